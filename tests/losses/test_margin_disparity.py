"""MDD's −D_γ on hand-computed cases, and which way its gradient pushes f'."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.margin_disparity import margin_disparity_loss


def test_value_on_a_hand_case() -> None:
    # Source: f' logits (0, 0), h_f = 0 -> CE = log 2. Target: f' logits (log 3, 0) -> softmax
    # (3/4, 1/4); h_f = 0 -> -log(1 - 3/4) = log 4; h_f = 1 -> -log(3/4). γ = 2.
    source = torch.zeros(1, 2)
    target = torch.tensor([[math.log(3.0), 0.0], [math.log(3.0), 0.0]])
    value = margin_disparity_loss(source, target, torch.tensor([0]), torch.tensor([0, 1]), 2.0)
    expected = 2 * math.log(2.0) + (math.log(4.0) - math.log(0.75)) / 2
    assert value.item() == pytest.approx(expected, rel=1e-6)


def test_descent_makes_f_prime_agree_on_the_source_and_disagree_on_the_target() -> None:
    source = torch.zeros(1, 3, requires_grad=True)
    target = torch.zeros(1, 3, requires_grad=True)
    margin_disparity_loss(source, target, torch.tensor([1]), torch.tensor([2]), 4.0).backward()
    # A descent step raises the source logit of h_f(s) and lowers the target logit of h_f(t).
    assert source.grad[0, 1] < 0 and (source.grad[0, [0, 2]] > 0).all()
    assert target.grad[0, 2] > 0 and (target.grad[0, [0, 1]] < 0).all()


def test_full_agreement_on_the_target_stays_finite_and_bad_margin_is_refused() -> None:
    target = torch.tensor([[100.0, -100.0]], requires_grad=True)
    value = margin_disparity_loss(torch.zeros(1, 2), target, torch.tensor([0]), torch.tensor([0]),
                                  1.0)
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(target.grad).all()
    with pytest.raises(ValueError, match="margin must be positive"):
        margin_disparity_loss(torch.zeros(1, 2), target, torch.tensor([0]), torch.tensor([0]), 0.0)
