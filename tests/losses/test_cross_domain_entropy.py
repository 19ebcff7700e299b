"""CrossDomainEntropy (CDS cross-domain matching / PCS instance-prototype matching) by hand."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.cross_domain_entropy import CrossDomainEntropy

ANCHORS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])


def test_entropy_over_all_anchors() -> None:
    # logits (1, 0, −1): Z = e + 1 + 1/e, H = log Z − Σ p·logit = log Z − (e − 1/e)/Z
    z = math.e + 1 + 1 / math.e
    expected = math.log(z) - (math.e - 1 / math.e) / z
    loss = CrossDomainEntropy(temperature=1.0)(torch.tensor([[1.0, 0.0]]), ANCHORS)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_top_k_keeps_the_most_similar_anchors_only() -> None:
    # top-2 logits (1, 0): H = log(1 + e) − e/(1 + e)
    expected = math.log(1 + math.e) - math.e / (1 + math.e)
    loss = CrossDomainEntropy(temperature=1.0, top_k=2)(torch.tensor([[1.0, 0.0]]), ANCHORS)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    everything = CrossDomainEntropy(temperature=1.0, top_k=10)(torch.tensor([[1.0, 0.0]]), ANCHORS)
    assert everything.item() == pytest.approx(CrossDomainEntropy(1.0)(
        torch.tensor([[1.0, 0.0]]), ANCHORS).item(), rel=1e-7)


def test_batch_mean_and_the_uniform_maximum() -> None:
    """A feature equally similar to every anchor has the maximal entropy log N."""
    features = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    anchors = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    # row 0: logits (0, 0) → log 2; row 1: logits (10, 0) at τ = 0.1 → log(1+e^-10) + 10 e^-10/(1+e^-10)
    small = math.log(1 + math.exp(-10)) + 10 * math.exp(-10) / (1 + math.exp(-10))
    loss = CrossDomainEntropy(temperature=0.1)(features, anchors)
    assert loss.item() == pytest.approx((math.log(2) + small) / 2, rel=1e-5)


def test_a_gradient_step_commits_the_feature_to_one_anchor() -> None:
    features = torch.tensor([[0.8, 0.6]], requires_grad=True)
    anchors = ANCHORS.clone().requires_grad_(True)
    loss_fn = CrossDomainEntropy(temperature=0.5)
    before = loss_fn(features, anchors)
    before.backward()
    assert anchors.grad is None, "anchors (bank entries, prototypes) must get no gradient"
    with torch.no_grad():
        after = loss_fn(features - 0.1 * features.grad, anchors)
    assert after < before


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="temperature"):
        CrossDomainEntropy(temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        CrossDomainEntropy(top_k=0)
    with pytest.raises(ValueError, match="dimension 3 but anchors 2"):
        CrossDomainEntropy()(torch.zeros(1, 3), ANCHORS)
