"""SPR (UEM Eq. 14): pairwise cosine and Euclidean structure kept against the frozen model."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.semantic_preserving import (SemanticPreservingLoss, pairwise_cosine,
                                              pairwise_distance)


def test_zero_when_the_model_equals_its_frozen_copy() -> None:
    features = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    loss = SemanticPreservingLoss()(features, features.detach().clone())
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(features.grad).all() and features.grad.abs().max() == 0


def test_hand_case() -> None:
    # f = orthonormal pair, f' = both (1, 0): off-diagonal cosine gap −1 → 1 each, distance
    # gap √2 − 0 → 2 each; (2·1 + 2·2) / B² = 6 / 4.
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    frozen = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert SemanticPreservingLoss()(features, frozen).item() == pytest.approx(1.5, rel=1e-6)


def test_cosine_part_ignores_scale_but_distance_part_does_not() -> None:
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    scaled = 3 * features
    torch.testing.assert_close(pairwise_cosine(scaled), pairwise_cosine(features))
    # Only the Euclidean term differs: Σ (3d − d)² / 9 over the 6 off-diagonal distances.
    distances = pairwise_distance(features)
    expected = ((2 * distances) ** 2).sum().item() / 9
    assert SemanticPreservingLoss()(scaled, features).item() == pytest.approx(expected, rel=1e-5)


def test_rotating_both_models_alike_changes_nothing() -> None:
    generator = torch.Generator().manual_seed(1)
    features, frozen = torch.randn(5, 2, generator=generator), torch.randn(5, 2, generator=generator)
    angle = 0.7
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    loss = SemanticPreservingLoss()
    assert loss(features @ rotation, frozen @ rotation).item() == pytest.approx(
        loss(features, frozen).item(), rel=1e-5)


def test_pairwise_distance_diagonal_has_zero_gradient() -> None:
    features = torch.tensor([[1.0, 2.0], [3.0, 5.0]], requires_grad=True)
    distances = pairwise_distance(features)
    assert distances[0, 1].item() == pytest.approx(math.sqrt(13.0))
    distances.sum().backward()
    assert torch.isfinite(features.grad).all()
