"""Transforms of feature vectors: the frozen-feature counterpart of image augmentation.

A method trained on precomputed features still needs two different "views" of a row for its
contrastive losses. They come from two sources, both documented and selectable in config:

* **cached views**: a frozen image backbone's features of a fixed number of augmented images
  per row (``frozen_features.py``); a training view is one of them, drawn uniformly;
* **feature-level augmentation** (``FeatureAugmentation``), applied after normalisation:
  Gaussian noise scaled per dimension by the domain's own spread (``noise_std`` · σ_d, so the
  setting means the same for 0–255 pixels and unit-norm embeddings), inverted dropout
  (``dropout``), and mixup with a random row of the *same* domain (``mixup_alpha``; λ ~
  Beta(α, α) folded to λ ≥ ½ so the row stays the majority of its view, and never across
  domains, which would leak the domain gap the methods must close).

Normalisation (``normalize``) comes first: 'l2' (unit rows; the usual reading of CNN features),
'zscore' (per-dimension standardisation with the domain's mean and std, the classic
preprocessing of SURF/DeCAF files) or 'none'. Evaluation applies the normalisation only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch

NORMALIZATIONS = ("l2", "zscore", "none")
_EPS = 1e-8


@dataclass(frozen=True)
class FeatureAugmentation:
    """Feature-level augmentation settings (a dataset config's ``augmentation=dict(...)``)."""

    normalize: str = "l2"
    noise_std: float = 0.1
    dropout: float = 0.1
    mixup_alpha: float = 0.0

    def __post_init__(self) -> None:
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"augmentation.normalize={self.normalize!r} is unknown; valid: "
                             f"{', '.join(NORMALIZATIONS)}")
        for key in ("noise_std", "dropout", "mixup_alpha"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"augmentation.{key} must be a number >= 0, got {value!r}")
        if self.dropout >= 1:
            raise ValueError(f"augmentation.dropout must lie in [0, 1), got {self.dropout!r}")

    @classmethod
    def from_config(cls, config: "FeatureAugmentation | dict | None",
                    defaults: dict | None = None) -> "FeatureAugmentation":
        """Build from a config dict; an unknown key is named with the valid ones."""
        if isinstance(config, FeatureAugmentation):
            return config
        values = dict(defaults or {})
        if config is not None:
            if not isinstance(config, dict):
                raise ValueError(f"augmentation must be a dict of {', '.join(cls.__dataclass_fields__)}"
                                 f", got {config!r}")
            unknown = sorted(set(config) - set(cls.__dataclass_fields__))
            if unknown:
                raise ValueError(f"augmentation has unknown key(s) {', '.join(unknown)}; valid keys: "
                                 f"{', '.join(cls.__dataclass_fields__)}")
            values.update(config)
        return cls(**values)

    def describe(self) -> dict:
        return asdict(self)


class FeatureRows:
    """Row ``i`` of a domain as ``(vector [D], views [V, D] or None)``, what the transforms take."""

    def __init__(self, vectors: np.ndarray, views: np.ndarray | None = None) -> None:
        if vectors.ndim != 2:
            raise ValueError(f"feature rows must be a [N, D] matrix, got shape {vectors.shape}")
        if views is not None and (views.ndim != 3 or views.shape[0] != vectors.shape[0]
                                  or views.shape[2] != vectors.shape[1]):
            raise ValueError(f"cached views must be [N, V, D] = [{vectors.shape[0]}, V, "
                             f"{vectors.shape[1]}], got {views.shape}")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.views = None if views is None or views.shape[1] == 0 else views.astype(np.float32)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.vectors)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        return self.vectors[index], (None if self.views is None else self.views[index])


class Normalizer:
    """``normalize`` with the statistics of one domain's vectors (fitted once)."""

    def __init__(self, kind: str, pool: np.ndarray) -> None:
        self.kind = kind
        pool = torch.from_numpy(np.asarray(pool, dtype=np.float32))
        self.mean = pool.mean(dim=0)
        self.std = pool.std(dim=0, unbiased=False).clamp_min(_EPS)

    def __call__(self, vectors: torch.Tensor) -> torch.Tensor:
        if self.kind == "l2":
            return vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(_EPS)
        if self.kind == "zscore":
            return (vectors - self.mean) / self.std
        return vectors


class FeatureTransform:
    """One domain's train or eval transform: ``(vector, views) -> tensor [D]`` (see module doc).

    Random draws use torch's global generator, which the harness seeds, like torchvision's
    image transforms do.
    """

    def __init__(self, pool: np.ndarray, augmentation: FeatureAugmentation, train: bool) -> None:
        self.augmentation = augmentation
        self.train = train
        self.normalizer = Normalizer(augmentation.normalize, pool)
        self.pool = self.normalizer(torch.from_numpy(np.asarray(pool, dtype=np.float32)))
        self.spread = self.pool.std(dim=0, unbiased=False)
        if augmentation.mixup_alpha > 0:
            alpha = torch.tensor(float(augmentation.mixup_alpha))
            self._beta = torch.distributions.Beta(alpha, alpha)

    def __call__(self, row: tuple[np.ndarray, np.ndarray | None]) -> torch.Tensor:
        vector, views = row
        if self.train and views is not None:
            vector = views[int(torch.randint(len(views), ()))]
        x = self.normalizer(torch.as_tensor(np.asarray(vector, dtype=np.float32)))
        if not self.train:
            return x
        settings = self.augmentation
        if settings.mixup_alpha > 0:
            weight = float(self._beta.sample())
            weight = max(weight, 1.0 - weight)
            x = weight * x + (1.0 - weight) * self.pool[int(torch.randint(len(self.pool), ()))]
        if settings.noise_std > 0:
            x = x + settings.noise_std * self.spread * torch.randn_like(x)
        if settings.dropout > 0:
            keep = (torch.rand_like(x) >= settings.dropout).to(x.dtype)
            x = x * keep / (1.0 - settings.dropout)
        return x


def feature_transforms(vectors: np.ndarray, augmentation: FeatureAugmentation
                       ) -> tuple[FeatureTransform, FeatureTransform]:
    """``(train, eval)`` transforms of one domain, fitted to its ``vectors`` ``[N, D]``."""
    return (FeatureTransform(vectors, augmentation, train=True),
            FeatureTransform(vectors, augmentation, train=False))


def stack_rows(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """A list column of equal-length vectors as one float32 matrix."""
    return np.asarray(rows, dtype=np.float32)
