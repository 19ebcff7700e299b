"""UniOT's PCD loss on a symmetric case whose Sinkhorn assignments are known by hand."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.private_class_discovery import private_class_discovery


def test_swapped_prediction_by_hand() -> None:
    """Anchor cosines (s, 0), neighbour (0, s): a balanced matrix, so Sinkhorn returns its
    row-normalised exp(scores/ε): Q_anchor = (p, 1 − p), Q_neighbour = (1 − p, p)."""
    temperature, epsilon, s = 0.5, 0.5, 0.4
    anchor = torch.tensor([[s / temperature, 0.0]])
    neighbour = torch.tensor([[0.0, s / temperature]])
    loss = private_class_discovery(anchor, neighbour, torch.zeros(0, 2), temperature,
                                   epsilon=epsilon, iterations=3)
    p = math.exp(s / epsilon) / (math.exp(s / epsilon) + 1)
    q = math.exp(s / temperature) / (math.exp(s / temperature) + 1)   # softmax of the logits
    log_anchor = (math.log(q), math.log(1 - q))
    log_neighbour = (math.log(1 - q), math.log(q))
    global_term = -(p * log_anchor[0] + (1 - p) * log_anchor[1])
    local_term = (-((1 - p) * log_anchor[0] + p * log_anchor[1])
                  - (p * log_neighbour[0] + (1 - p) * log_neighbour[1])) / 2
    assert loss.item() == pytest.approx((global_term + local_term) / 2, rel=1e-5)


def test_assignments_carry_no_gradient_and_one_prototype_costs_nothing() -> None:
    anchor = torch.zeros(3, 1, requires_grad=True)
    loss = private_class_discovery(anchor, torch.zeros(3, 1), torch.zeros(2, 1), 0.1)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.count_nonzero(anchor.grad) == 0
