"""ProtoOTContrast (ProtoOT's in-domain loss) against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.protoot_contrast import ProtoOTContrast

QUERY = torch.tensor([[1.0, 0.0]])
KEY = torch.tensor([[1.0, 0.0]])
NEIGHBOUR = torch.tensor([[0.0, 1.0]])
PROTOTYPES = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])


def test_blended_positive_against_unmatched_prototypes() -> None:
    # s⁺ = 1·(q·k) + 0.5·(q·n) + 0.05·(q·p₀) = 1.05; negatives q·p₁ = 0, q·p₂ = −1 (τ = 1).
    loss = ProtoOTContrast(temperature=1.0)(QUERY, KEY, NEIGHBOUR, PROTOTYPES, torch.tensor([0]))
    expected = -math.log(math.exp(1.05) / (math.exp(1.05) + 1 + math.exp(-1)))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_matched_prototype_leaves_the_negatives() -> None:
    # Target 1: s⁺ = 1 + 0 + 0.05·0 = 1; negatives q·p₀ = 1 and q·p₂ = −1.
    loss = ProtoOTContrast(temperature=1.0)(QUERY, KEY, NEIGHBOUR, PROTOTYPES, torch.tensor([1]))
    expected = -math.log(math.e / (math.e + math.e + math.exp(-1)))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_only_queries_get_gradients() -> None:
    query = QUERY.clone().requires_grad_(True)
    key = KEY.clone().requires_grad_(True)
    prototypes = PROTOTYPES.clone().requires_grad_(True)
    ProtoOTContrast(temperature=0.2)(query, key, NEIGHBOUR, prototypes, torch.tensor([1])).backward()
    assert query.grad.abs().sum() > 0
    assert key.grad is None and prototypes.grad is None
