"""DANCE's entropy separation and neighbourhood clustering, by hand."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.entropy_separation import (default_threshold, entropy_separation,
                                             softmax_entropy)
from u2cdr.losses.neighbourhood_clustering import neighbourhood_clustering, neighbourhood_logits


def test_threshold_is_half_the_largest_entropy() -> None:
    assert default_threshold(15) == pytest.approx(1.354025100551105)  # DANCE's Office-Home thr
    with pytest.raises(ValueError, match="at least 2 classes"):
        default_threshold(1)


def test_separation_pushes_away_from_rho_outside_the_margin() -> None:
    rho = math.log(2) / 2
    uniform = torch.zeros(1, 2)                    # H = log 2, |H − ρ| = 0.347
    peaked = torch.tensor([[30.0, 0.0]])           # H ≈ 0,     |H − ρ| = 0.347
    both = torch.cat([uniform, peaked])
    assert softmax_entropy(uniform).item() == pytest.approx(math.log(2))
    # within the margin 0.5: clamped to −0.5 (no gradient); margin 0.1: −|H − ρ|
    assert entropy_separation(both, rho, margin=0.5).item() == pytest.approx(-0.5)
    assert entropy_separation(both, rho, margin=0.1).item() == pytest.approx(-rho, rel=1e-5)
    logits = uniform.clone().requires_grad_(True)
    entropy_separation(logits, rho, margin=0.5).backward()
    assert torch.count_nonzero(logits.grad) == 0


def test_neighbourhood_logits_mask_the_batch_in_the_bank_and_self() -> None:
    features = torch.tensor([[1.0, 0.0], [0.0, 2.0]])           # normalised inside
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    prototype_logits = torch.tensor([[7.0], [8.0]])
    logits = neighbourhood_logits(features, torch.tensor([0, 1]), bank, prototype_logits, 0.5)
    # columns: prototype | bank 0, 1 (batch rows → −1/T), bank 2 | batch 0, 1 (self → −1/T)
    expected = torch.tensor([[7.0, -2.0, -2.0, 1.2, -2.0, 0.0],
                             [8.0, -2.0, -2.0, 1.6, 0.0, -2.0]])
    assert torch.allclose(logits, expected, atol=1e-6)


def test_neighbourhood_clustering_is_the_mean_entropy() -> None:
    features = torch.tensor([[1.0, 0.0]])
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # one sample: logits (prototype 0, bank row 0 masked to −1, bank row 1: 0, self masked −1)
    loss = neighbourhood_clustering(features, torch.tensor([0]), bank, torch.zeros(1, 1), 1.0)
    logits = [0.0, -1.0, 0.0, -1.0]
    z = sum(math.exp(v) for v in logits)
    expected = -sum(math.exp(v) / z * (v - math.log(z)) for v in logits)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
