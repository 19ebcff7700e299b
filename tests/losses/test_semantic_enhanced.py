"""SEL (UEM Eq. 11): softmax-weighted Euclidean distances to every merged prototype."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.semantic_enhanced import SemanticEnhancedLoss


def test_hand_computed_value_with_unit_temperature() -> None:
    # f1 = (1, 0): logits (1, 0) → weights (e/(e+1), 1/(e+1)); distances (0, √2).
    # f2 = (0, 2): logits (0, 2) → weights (1/(1+e²), e²/(1+e²)); distances (√5, 1).
    features = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    prototypes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    e = math.e
    first = (1 / (e + 1)) * math.sqrt(2)
    second = (1 / (1 + e**2)) * math.sqrt(5) + (e**2 / (1 + e**2)) * 1.0
    loss = SemanticEnhancedLoss(temperature=1.0)(features, prototypes)
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_distance_prototypes_change_only_the_distances() -> None:
    # Logits from unit prototypes, distances to raw ones twice as far out.
    features = torch.tensor([[1.0, 0.0]])
    unit = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    raw = 2 * unit
    e = math.e
    expected = (e / (e + 1)) * 1.0 + (1 / (e + 1)) * math.sqrt(5)
    loss = SemanticEnhancedLoss(temperature=1.0)(features, unit, raw)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_low_temperature_reduces_to_the_distance_to_the_most_similar_prototype() -> None:
    features = torch.tensor([[0.6, 0.8]])
    prototypes = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    loss = SemanticEnhancedLoss(temperature=1e-3)(features, prototypes)
    assert loss.item() == pytest.approx(math.sqrt(0.36 + 0.04), rel=1e-5)


def test_gradient_is_finite_on_a_prototype_and_detaching_changes_it() -> None:
    prototypes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    on_prototype = torch.tensor([[1.0, 0.0]], requires_grad=True)
    SemanticEnhancedLoss(temperature=0.5)(on_prototype, prototypes).backward()
    assert torch.isfinite(on_prototype.grad).all()

    grads = []
    for detach in (False, True):
        features = torch.tensor([[0.6, 0.8]], requires_grad=True)
        SemanticEnhancedLoss(temperature=0.5, detach_weights=detach)(features, prototypes).backward()
        grads.append(features.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_shape_mismatch_is_named() -> None:
    with pytest.raises(ValueError, match="shapes do not fit"):
        SemanticEnhancedLoss()(torch.zeros(2, 3), torch.zeros(4, 3), torch.zeros(5, 3))
