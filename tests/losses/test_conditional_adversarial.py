"""CDAN's multilinear maps, entropy weights and conditional adversarial loss on hand-computed cases."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.adversarial import domain_adversarial_loss
from u2cdr.losses.conditional_adversarial import conditional_adversarial_loss, entropy_weights
from u2cdr.models.domain_classifier import DomainClassifier
from u2cdr.models.multilinear_map import (MultilinearMap, RandomizedMultilinearMap,
                                          conditioning_map, multilinear_map)


def _relu_classifier() -> DomainClassifier:
    """logit = relu(x) for 1-d inputs."""
    classifier = DomainClassifier(1, hidden_dim=1)
    with torch.no_grad():
        classifier.layers[0].weight.fill_(1.0)
        classifier.layers[0].bias.zero_()
        classifier.layers[2].weight.fill_(1.0)
        classifier.layers[2].bias.zero_()
    return classifier


def test_multilinear_map_is_the_flattened_outer_product() -> None:
    features = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    predictions = torch.tensor([[3.0, 4.0, 5.0], [1.0, 0.0, 0.0]])
    assert multilinear_map(features, predictions).tolist() == [[3, 4, 5, 6, 8, 10],
                                                               [0, 0, 0, -1, 0, 0]]
    with pytest.raises(ValueError, match=r"\[B, d_f\] features"):
        multilinear_map(features, predictions[:1])


def test_randomized_map_by_hand_and_its_inner_products_match_in_expectation() -> None:
    randomized = RandomizedMultilinearMap(2, 2, out_dim=2)
    with torch.no_grad():
        randomized.feature_projection.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
        randomized.prediction_projection.copy_(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
    # R_f f = [1, 3], R_g g = [2, 3] for f = [1, 2], g = [1, 1]; ⊙ → [2, 9]; / √2.
    value = randomized(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 1.0]]))
    assert value.tolist()[0] == pytest.approx([2 / math.sqrt(2), 9 / math.sqrt(2)], rel=1e-6)

    torch.manual_seed(0)
    wide = RandomizedMultilinearMap(3, 2, out_dim=20000)
    f, g = torch.tensor([[1.0, -2.0, 0.5]]), torch.tensor([[0.3, 0.7]])
    f2, g2 = torch.tensor([[0.5, 1.0, 2.0]]), torch.tensor([[0.9, 0.1]])
    exact = (multilinear_map(f, g) * multilinear_map(f2, g2)).sum()
    approx = (wide(f, g) * wide(f2, g2)).sum()
    # CDAN Thm. 1: exact = (f·f2)(g·g2) = −0.5 · 0.34 = −0.17; the estimate's standard deviation
    # is about (‖f‖‖f2‖‖g‖‖g2‖)/√20000 ≈ 0.026.
    assert exact.item() == pytest.approx(-0.17, rel=1e-6)
    assert approx.item() == pytest.approx(exact.item(), abs=0.08)


def test_conditioning_map_randomizes_only_above_the_threshold() -> None:
    assert isinstance(conditioning_map(128, 32), MultilinearMap)  # 4096 is not > 4096
    above = conditioning_map(128, 33)
    assert isinstance(above, RandomizedMultilinearMap) and above.out_dim == 1024
    assert conditioning_map(128, 33, "never").out_dim == 128 * 33
    assert conditioning_map(4, 2, "always", random_dim=7).out_dim == 7
    with pytest.raises(ValueError, match="'sometimes'.*auto, always, never"):
        conditioning_map(4, 2, "sometimes")


def test_entropy_weights_by_hand() -> None:
    weights = entropy_weights(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]]))
    assert weights.tolist() == pytest.approx([2.0, 1.25], rel=1e-6)  # 1 + e^0, 1 + e^{-log 4}


def test_unweighted_conditional_loss_is_dann_and_weights_are_normalised_per_domain() -> None:
    classifier = _relu_classifier()
    a = torch.tensor([[2.0], [0.0]], requires_grad=True)
    b = torch.tensor([[1.0]], requires_grad=True)
    plain = conditional_adversarial_loss(classifier, a, b)
    assert plain.item() == pytest.approx(domain_adversarial_loss(classifier, a, b).item())

    # BCE: A logit 2 → log(1+e^-2), A logit 0 → log 2, B logit 1 (label 0) → log(1+e).
    # A's weights (2, 1) normalise to (2/3, 1/3), B's (1.25) to 1; Σ w = 2.
    weighted = conditional_adversarial_loss(classifier, a, b, 0.5, torch.tensor([2.0, 1.0]),
                                            torch.tensor([1.25]))
    expected = (2 / 3 * math.log(1 + math.exp(-2)) + 1 / 3 * math.log(2) + math.log(1 + math.e)) / 2
    assert weighted.item() == pytest.approx(expected, rel=1e-6)
    weighted.backward()
    # d/d b = ½ · σ(1) through the classifier, reversed and scaled by λ = 0.5 for the input.
    assert b.grad.item() == pytest.approx(-0.5 * 0.5 / (1 + math.exp(-1)), rel=1e-5)
    with pytest.raises(ValueError, match="both domains or for neither"):
        conditional_adversarial_loss(classifier, a, b, weights_a=torch.ones(2))
