"""SelfMatchingLoss (CoDA in-domain self-matching supervision) by hand."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from u2cdr.losses.self_matching import SelfMatchingLoss


def test_uniform_prediction_costs_log_k_whatever_the_target() -> None:
    loss = SelfMatchingLoss(temperature=1.0)(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(math.log(2), rel=1e-6)


def test_soft_target_cross_entropy() -> None:
    # q = softmax((1, 0)/0.5) = (e²/(e²+1), 1/(e²+1)); log softmax(1, 0) = (1 − log(1+e), −log(1+e))
    # loss = −q₁(1 − log(1+e)) + q₂ log(1+e) = log(1+e) − q₁
    q1 = math.exp(2) / (math.exp(2) + 1)
    loss = SelfMatchingLoss(temperature=0.5)(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(math.log(1 + math.e) - q1, rel=1e-6)


def test_student_temperature_sharpens_the_current_prediction() -> None:
    # log softmax((1, 0)/0.5) = (2 − L, −L) with L = log(1 + e²); target (½, ½) → loss L − 1
    loss = SelfMatchingLoss(temperature=1.0, student_temperature=0.5)(
        torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]))
    assert loss.item() == pytest.approx(math.log(1 + math.exp(2)) - 1, rel=1e-6)


def test_low_temperature_makes_the_target_the_arg_max() -> None:
    logits = torch.tensor([[0.3, -0.2, 0.1], [0.0, 0.5, -0.5]])
    memory_logits = torch.tensor([[0.2, 0.1, 0.0], [0.1, 0.0, 0.4]])
    loss = SelfMatchingLoss(temperature=0.001)(logits, memory_logits)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, torch.tensor([0, 2])).item(), rel=1e-5)


def test_the_target_side_gets_no_gradient() -> None:
    logits = torch.tensor([[0.3, -0.2]], requires_grad=True)
    memory_logits = torch.tensor([[0.2, 0.1]], requires_grad=True)
    SelfMatchingLoss()(logits, memory_logits).backward()
    assert memory_logits.grad is None
    assert logits.grad.abs().sum() > 0


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="temperature"):
        SelfMatchingLoss(temperature=-1.0)
    with pytest.raises(ValueError, match="student_temperature"):
        SelfMatchingLoss(student_temperature=0.0)
    with pytest.raises(ValueError, match="same shape"):
        SelfMatchingLoss()(torch.zeros(2, 3), torch.zeros(2, 4))
