"""CDAN's conditioning of the domain discriminator: the multilinear map f ⊗ g (Long et al., NeurIPS 2018).

CDAN feeds the discriminator not the feature f but its outer product with the prediction g,
so alignment is conditioned on *what* an image looks like it is (CDAN Eq. 4–5):

    T⊗(f, g) = vec(f gᵀ) ∈ R^{d_f · d_g}                       (multilinear map)
    T⊙(f, g) = (R_f f) ⊙ (R_g g) / √d,  R_f ∈ R^{d×d_f}, R_g ∈ R^{d×d_g}   (randomized, CDAN-RM)

with R_f, R_g drawn once from N(0, 1) and kept fixed; E[⟨T⊙(f,g), T⊙(f',g')⟩] = ⟨T⊗(f,g),
T⊗(f',g')⟩ (CDAN Thm. 1). The paper switches to the randomized map when d_f · d_g > 4096;
``conditioning_map`` takes that rule with the threshold and d as arguments.
"""
from __future__ import annotations

import math

import torch
from torch import nn

# CDAN §3 ("we use the randomized multilinear map if the dimension of the multilinear map is
# larger than 4096") and the released code's random_dim (1024).
RANDOMIZE_ABOVE = 4096
RANDOM_DIM = 1024
RANDOMIZED_CHOICES = ("auto", "always", "never")


def multilinear_map(features: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
    """``[B, d_f]`` ⊗ ``[B, d_g]`` → ``[B, d_f · d_g]``, row ``b`` = vec(f_b g_bᵀ) (f-major)."""
    if features.ndim != 2 or predictions.ndim != 2 or len(features) != len(predictions):
        raise ValueError(f"need [B, d_f] features and [B, d_g] predictions, got shapes "
                         f"{tuple(features.shape)} and {tuple(predictions.shape)}")
    return torch.einsum("bf,bg->bfg", features, predictions).reshape(len(features), -1)


class MultilinearMap(nn.Module):
    """T⊗ as a module (no parameters), with ``out_dim = d_f · d_g``."""

    def __init__(self, feature_dim: int, prediction_dim: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.prediction_dim = prediction_dim
        self.out_dim = feature_dim * prediction_dim

    def forward(self, features: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
        return multilinear_map(features, predictions)


class RandomizedMultilinearMap(nn.Module):
    """T⊙(f, g) = (R_f f) ⊙ (R_g g) / √d with fixed Gaussian R_f ``[d, d_f]``, R_g ``[d, d_g]``.

    The matrices are buffers: drawn from torch's generator at construction (so the cell seed
    fixes them), saved in checkpoints, never trained.
    """

    def __init__(self, feature_dim: int, prediction_dim: int, out_dim: int = RANDOM_DIM) -> None:
        super().__init__()
        if min(feature_dim, prediction_dim, out_dim) < 1:
            raise ValueError(f"dimensions must be >= 1, got feature_dim={feature_dim}, "
                             f"prediction_dim={prediction_dim}, out_dim={out_dim}")
        self.feature_dim = feature_dim
        self.prediction_dim = prediction_dim
        self.out_dim = out_dim
        self.register_buffer("feature_projection", torch.randn(out_dim, feature_dim))
        self.register_buffer("prediction_projection", torch.randn(out_dim, prediction_dim))

    def forward(self, features: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
        return ((features @ self.feature_projection.t()) * (predictions @ self.prediction_projection.t())
                / math.sqrt(self.out_dim))


def conditioning_map(feature_dim: int, prediction_dim: int, randomized: str = "auto",
                     randomize_above: int = RANDOMIZE_ABOVE,
                     random_dim: int = RANDOM_DIM) -> MultilinearMap | RandomizedMultilinearMap:
    """CDAN's choice: T⊗ unless ``d_f · d_g > randomize_above`` ('auto'), or forced either way.

    Args:
        feature_dim: d_f.
        prediction_dim: d_g (the number of classes — here clusters).
        randomized: 'auto' (the paper's rule), 'always' (CDAN-RM) or 'never' (CDAN-M).
        randomize_above: the 'auto' threshold on d_f · d_g (4096 in the paper).
        random_dim: d of the randomized map (1024 in the released code).
    """
    if randomized not in RANDOMIZED_CHOICES:
        raise ValueError(f"randomized={randomized!r} is unknown; valid: {', '.join(RANDOMIZED_CHOICES)}")
    use_random = randomized == "always" or (randomized == "auto"
                                            and feature_dim * prediction_dim > randomize_above)
    if use_random:
        return RandomizedMultilinearMap(feature_dim, prediction_dim, random_dim)
    return MultilinearMap(feature_dim, prediction_dim)
