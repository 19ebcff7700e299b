"""SN²M (UEM Eqs. 15–17): δ-distance searches, the prototype-consistency switch, the ablation."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.sn2m import (CrossDomainNeighbourLoss, SwitchableNearestNeighbourMatch,
                               product_distance)

FEATURES = torch.tensor([[1.0, 0.0]])
OWN_PROTOTYPES = torch.tensor([[1.0, 0.0], [0.0, 1.0]])    # the query sits on prototype 0
OTHER_MERGED = torch.tensor([[1.0, 0.0], [0.0, 1.0]])      # P^{Y'}
# δ((1,0), (0.8,0.6)) = 0.2·√0.4 = 0.126 < δ((1,0), (0,1)) = √2: neighbour 0, whose nearest
# merged prototype is slot 0 (δ 0.126 versus 0.4·√0.8 = 0.358).
OTHER_BANK = torch.tensor([[0.8, 0.6], [0.0, 1.0]])


def test_product_distance_hand_values() -> None:
    u = torch.tensor([[1.0, 0.0]])
    v = torch.tensor([[0.0, 2.0], [2.0, 0.0], [1.0, 0.0], [0.8, 0.6]])
    expected = [math.sqrt(5.0), 0.0, 0.0, 0.2 * math.sqrt(0.4)]
    torch.testing.assert_close(product_distance(u, v)[0], torch.tensor(expected), atol=1e-6,
                               rtol=1e-5)


def _denominator() -> float:
    # Logits at τ = 1: prototypes (1, 0), bank (0.8, 0).
    return math.exp(1.0) + math.exp(0.0) + math.exp(0.8) + math.exp(0.0)


def test_switch_keeps_the_neighbour_when_its_prototype_agrees() -> None:
    result = SwitchableNearestNeighbourMatch(temperature=1.0)(
        FEATURES, OWN_PROTOTYPES, torch.tensor([0, 1]), OTHER_MERGED, OTHER_BANK)
    assert result.positive_pair.tolist() == [True]
    assert result.neighbour.tolist() == [0] and result.prototype_target.tolist() == [0]
    expected = -math.log((math.exp(1.0) + math.exp(0.8)) / _denominator())
    assert result.loss.item() == pytest.approx(expected, rel=1e-6)


def test_switch_drops_the_neighbour_when_prototypes_disagree() -> None:
    # The query's cluster now maps to slot 1 of P^{Y'}; the neighbour still sits in slot 0.
    result = SwitchableNearestNeighbourMatch(temperature=1.0)(
        FEATURES, OWN_PROTOTYPES, torch.tensor([1, 0]), OTHER_MERGED, OTHER_BANK)
    assert result.positive_pair.tolist() == [False]
    assert result.prototype_target.tolist() == [1]
    expected = -math.log(math.exp(0.0) / _denominator())
    assert result.loss.item() == pytest.approx(expected, rel=1e-6)


def test_logit_prototypes_are_used_in_the_softmax_only() -> None:
    scaled = 2 * OTHER_MERGED
    result = SwitchableNearestNeighbourMatch(temperature=1.0)(
        FEATURES, OWN_PROTOTYPES, torch.tensor([0, 1]), OTHER_MERGED, OTHER_BANK, scaled)
    denominator = math.exp(2.0) + math.exp(0.0) + math.exp(0.8) + math.exp(0.0)
    expected = -math.log((math.exp(2.0) + math.exp(0.8)) / denominator)
    assert result.loss.item() == pytest.approx(expected, rel=1e-6)


def test_training_step_pulls_the_query_towards_its_positives() -> None:
    features = torch.tensor([[0.6, 0.8]], requires_grad=True)
    match = SwitchableNearestNeighbourMatch(temperature=0.5)
    before = match(features, OWN_PROTOTYPES, torch.tensor([0, 1]), OTHER_MERGED, OTHER_BANK)
    before.loss.backward()
    with torch.no_grad():
        stepped = features - 0.1 * features.grad
    after = match(stepped, OWN_PROTOTYPES, torch.tensor([0, 1]), OTHER_MERGED, OTHER_BANK)
    assert after.loss.item() < before.loss.item()


def test_nearest_neighbour_ablation_hand_value() -> None:
    # Cosine neighbour of (1, 0) is (0.8, 0.6); logits (0.8, 0) at τ = 1.
    loss = CrossDomainNeighbourLoss(temperature=1.0)(FEATURES, OTHER_BANK)
    expected = -math.log(math.exp(0.8) / (math.exp(0.8) + math.exp(0.0)))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_batch_negatives_replace_the_bank_and_keep_the_accepted_neighbour() -> None:
    # Only the bank row (0, 1) is a batch negative; the accepted neighbour (0.8, 0.6) joins the
    # denominator because it is a positive.
    result = SwitchableNearestNeighbourMatch(temperature=1.0)(
        FEATURES, OWN_PROTOTYPES, torch.tensor([0, 1]), OTHER_MERGED, OTHER_BANK,
        instance_negatives=OTHER_BANK[1:])
    denominator = math.exp(1.0) + math.exp(0.0) + math.exp(0.0) + math.exp(0.8)
    expected = -math.log((math.exp(1.0) + math.exp(0.8)) / denominator)
    assert result.positive_pair.tolist() == [True]
    assert result.loss.item() == pytest.approx(expected, rel=1e-6)
