"""Unbalanced Sinkhorn (KL-relaxed marginals) against its closed forms and limits."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.unbalanced_sinkhorn import unbalanced_sinkhorn


def test_one_by_one_closed_form() -> None:
    """For N = K = 1 the fixed point is Q = (ab)^{λ/(2λ+ε)} · exp(−C/(2λ+ε))."""
    a, b, cost, epsilon, relaxation = 0.5, 0.2, 0.3, 0.1, 0.5
    as_tensor = lambda *values: torch.tensor(values, dtype=torch.float64)  # noqa: E731
    plan = unbalanced_sinkhorn(as_tensor([cost]), as_tensor(a), as_tensor(b),
                               epsilon=epsilon, relaxation=relaxation, tolerance=1e-12)
    expected = (a * b) ** (relaxation / (2 * relaxation + epsilon)) * math.exp(
        -cost / (2 * relaxation + epsilon))
    assert plan.item() == pytest.approx(expected, rel=1e-9)


def test_strong_relaxation_weight_recovers_balanced_marginals() -> None:
    cost = torch.tensor([[0.0, 1.0], [0.5, 0.2], [1.0, 0.0]])
    rows, columns = torch.full((3,), 1 / 3), torch.tensor([0.25, 0.75])
    plan = unbalanced_sinkhorn(cost, rows, columns, epsilon=0.1, relaxation=1e6, tolerance=1e-12,
                               iterations=5000)
    assert plan.sum(dim=1).tolist() == pytest.approx(rows.tolist(), abs=1e-5)
    assert plan.sum(dim=0).tolist() == pytest.approx(columns.tolist(), abs=1e-5)


def test_a_row_far_from_every_column_keeps_its_mass() -> None:
    """The point of UniOT's CCD: with relaxed marginals a costly row transports little."""
    similarity = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-0.5, -0.5]])
    plan = unbalanced_sinkhorn(-similarity, torch.full((3,), 1 / 3), torch.full((2,), 0.5),
                               epsilon=0.01, relaxation=0.5)
    transported = plan.sum(dim=1)
    assert transported[2] < 0.1 * transported[0]
    assert transported[0].item() == pytest.approx(transported[1].item(), rel=1e-6)
    assert plan[0, 0] > 100 * plan[0, 1]


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="do not fit a cost"):
        unbalanced_sinkhorn(torch.zeros(2, 2), torch.ones(3), torch.ones(2))
    with pytest.raises(ValueError, match="must be positive"):
        unbalanced_sinkhorn(torch.zeros(1, 2), torch.ones(1), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="epsilon > 0"):
        unbalanced_sinkhorn(torch.zeros(1, 1), torch.ones(1), torch.ones(1), epsilon=0.0)
