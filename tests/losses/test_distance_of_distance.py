"""DistanceOfDistance against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.distance_of_distance import DistanceOfDistance

FEATURES = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
SEPARATING = torch.tensor([[1.0, 0.0], [0.0, 1.0]])   # tells the two samples apart
BLIND = torch.tensor([[1.0, 0.0], [1.0, 0.0]])        # two equal prototypes: every sample alike


def test_hand_computed_value() -> None:
    # Through SEPARATING (τ = 1): s₁ = (a, b), s₂ = (b, a), a = e/(e+1), b = 1/(e+1);
    # cos(s₁, s₂) = 2ab/(a²+b²), so D^A = [[0, 1−c], [1−c, 0]]. Through BLIND every soft
    # assignment is (½, ½), D^B = 0. Each row differs by (1−c)² → mean (1−c)².
    a, b = math.e / (math.e + 1), 1 / (math.e + 1)
    c = 2 * a * b / (a * a + b * b)
    loss = DistanceOfDistance(temperature=1.0)(FEATURES, SEPARATING, BLIND)
    assert loss.item() == pytest.approx((1 - c) ** 2, rel=1e-5)


def test_symmetric_and_zero_for_identical_prototypes() -> None:
    loss_fn = DistanceOfDistance(temperature=1.0)
    assert loss_fn(FEATURES, SEPARATING, BLIND).item() == pytest.approx(
        loss_fn(FEATURES, BLIND, SEPARATING).item(), rel=1e-6)
    assert loss_fn(FEATURES, SEPARATING, SEPARATING).item() == pytest.approx(0.0, abs=1e-12)


def test_distances_are_cosine_distances_of_soft_assignments() -> None:
    distances = DistanceOfDistance(temperature=0.01).distances(FEATURES, SEPARATING)
    # τ = 0.01 makes the assignments one-hot and orthogonal: distance 1 off the diagonal.
    assert torch.allclose(distances, torch.tensor([[0.0, 1.0], [1.0, 0.0]]), atol=1e-6)


def test_gradient_reaches_features() -> None:
    features = FEATURES.clone().requires_grad_(True)
    DistanceOfDistance(temperature=1.0)(features, SEPARATING, BLIND).backward()
    assert features.grad.abs().sum() > 0
