"""DomainAwareNCE (DARLING's loss) against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from u2cdr.losses.domain_aware_nce import DomainAwareNCE

# One anchor q = key k = e1 (s⁺ = 1 at τ = 1); domain A's negative e2 (s = 0), domain B's −e1 (s = −1).
QUERY = torch.tensor([[1.0, 0.0]])
KEY = torch.tensor([[1.0, 0.0]])
NEGATIVES = [torch.tensor([[0.0, 1.0]]), torch.tensor([[-1.0, 0.0]])]
WEIGHTS = torch.tensor([[0.25, 0.75]])
P_A = math.e / (math.e + 1.0)                   # e¹ / (e¹ + e⁰)
P_B = math.e / (math.e + math.exp(-1.0))        # e¹ / (e¹ + e⁻¹)


def test_mixture_is_minus_log_of_the_weighted_likelihoods() -> None:
    loss = DomainAwareNCE(temperature=1.0)(QUERY, KEY, NEGATIVES, WEIGHTS)
    assert loss.item() == pytest.approx(-math.log(0.25 * P_A + 0.75 * P_B), rel=1e-6)


def test_expected_is_the_weighted_sum_of_minus_logs() -> None:
    loss = DomainAwareNCE(temperature=1.0, aggregation="expected")(QUERY, KEY, NEGATIVES, WEIGHTS)
    assert loss.item() == pytest.approx(-(0.25 * math.log(P_A) + 0.75 * math.log(P_B)), rel=1e-6)
    mixture = DomainAwareNCE(temperature=1.0)(QUERY, KEY, NEGATIVES, WEIGHTS)
    assert loss.item() > mixture.item()  # Jensen: the expected form bounds the mixture from above


def test_one_hot_weights_give_moco_infonce_on_that_domains_queue() -> None:
    torch.manual_seed(0)
    query, key = F.normalize(torch.randn(4, 8), dim=1), F.normalize(torch.randn(4, 8), dim=1)
    queues = [F.normalize(torch.randn(5, 8), dim=1), F.normalize(torch.randn(3, 8), dim=1)]
    own_domain = torch.tensor([[1.0, 0.0]]).repeat(4, 1)
    loss = DomainAwareNCE(temperature=0.2)(query, key, queues, own_domain)
    logits = torch.cat([(query * key).sum(1, keepdim=True), query @ queues[0].t()], dim=1) / 0.2
    assert loss.item() == pytest.approx(F.cross_entropy(logits, torch.zeros(4, dtype=torch.long)).item(),
                                        rel=1e-5)
    # The other domain's negatives, however easy or hard, no longer matter.
    harder = [queues[0], query.repeat(2, 1)]
    assert DomainAwareNCE(temperature=0.2)(query, key, harder, own_domain).item() == pytest.approx(
        loss.item(), rel=1e-6)


def test_gradient_reaches_the_query_only() -> None:
    query = QUERY.clone().requires_grad_(True)
    key, weights = KEY.clone().requires_grad_(True), WEIGHTS.clone().requires_grad_(True)
    DomainAwareNCE(temperature=0.5)(query, key, NEGATIVES, weights).backward()
    assert query.grad is not None and query.grad.abs().sum() > 0
    assert key.grad is None and weights.grad is None


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="'max'.*mixture, expected"):
        DomainAwareNCE(aggregation="max")
    with pytest.raises(ValueError, match="temperature must be positive"):
        DomainAwareNCE(temperature=0.0)
    loss = DomainAwareNCE()
    with pytest.raises(ValueError, match="sum to 1"):
        loss(QUERY, KEY, NEGATIVES, torch.tensor([[0.5, 0.6]]))
    with pytest.raises(ValueError, match=r"shape \(1, 2\)"):
        loss(QUERY, KEY, NEGATIVES, torch.tensor([[1.0]]))
