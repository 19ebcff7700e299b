"""ProtoNCE, the domain-adversarial loss and Sinkhorn on hand-computed cases."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.adversarial import domain_adversarial_loss
from u2cdr.losses.proto_nce import ProtoNCE
from u2cdr.losses.sinkhorn import sinkhorn
from u2cdr.models.domain_classifier import DomainClassifier


def test_proto_nce_matches_a_hand_computed_value() -> None:
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    prototypes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # τ = 0.5: logits are [[2, 0], [0, 2]]; targets [0, 0]:
    # sample 1: −log(e²/(e²+1)) = log(1+e^-2); sample 2: −log(1/(1+e²)) = log(1+e²)
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2))) / 2
    loss = ProtoNCE(temperature=0.5)(features, prototypes, torch.tensor([0, 0]))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="targets must lie in 0..1"):
        ProtoNCE()(features, prototypes, torch.tensor([0, 2]))


def test_domain_adversarial_loss_is_bce_and_reverses_the_encoder_gradient() -> None:
    classifier = DomainClassifier(1, hidden_dim=1)
    with torch.no_grad():  # logit = 1·relu(1·x + 0) + 0 = relu(x)
        classifier.layers[0].weight.fill_(1.0)
        classifier.layers[0].bias.zero_()
        classifier.layers[2].weight.fill_(1.0)
        classifier.layers[2].bias.zero_()
    features_a = torch.tensor([[2.0]], requires_grad=True)
    features_b = torch.tensor([[0.0]], requires_grad=True)
    loss = domain_adversarial_loss(classifier, features_a, features_b, coefficient=1.0)
    # A: logit 2, label 1 → log(1+e^-2); B: logit 0, label 0 → log 2
    assert loss.item() == pytest.approx((math.log(1 + math.exp(-2)) + math.log(2)) / 2, rel=1e-6)
    loss.backward()
    # d loss / d x_A = ½·(σ(2) − 1) through the classifier; reversed for the encoder.
    assert features_a.grad.item() == pytest.approx(-0.5 * (1 / (1 + math.exp(-2)) - 1), rel=1e-5)
    assert classifier.layers[2].weight.grad is not None


def test_sinkhorn_equalises_prototype_mass_and_keeps_rows_stochastic() -> None:
    scores = torch.tensor([[1.0, 0.0], [0.9, 0.0], [0.8, 0.1], [0.7, 0.2]])
    plan = sinkhorn(scores, epsilon=0.1, iterations=50)
    assert torch.allclose(plan.sum(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(plan.sum(dim=0), torch.full((2,), 2.0), atol=1e-3)
    # A plain softmax would give prototype 0 nearly all the mass; the plan splits it 2 / 2.
    assert torch.softmax(scores / 0.1, dim=1)[:, 0].sum() > 3.5
    assert plan[0, 0] > plan[3, 0]  # the ordering of affinities is kept
    with pytest.raises(ValueError, match="epsilon"):
        sinkhorn(scores, epsilon=0.0)
