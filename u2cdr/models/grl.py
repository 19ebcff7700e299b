"""Gradient reversal (Ganin & Lempitsky, ICML 2015): identity forward, −λ·grad backward.

It turns "the domain classifier minimises its loss" and "the encoder maximises it" into one
backward pass (UEM's bi-level Eq. 13, DANN, CDAN).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coefficient * grad_output, None


def grad_reverse(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """``x`` unchanged; its gradient multiplied by ``-coefficient``."""
    return _ReverseGradient.apply(x, float(coefficient))


class GradientReversal(nn.Module):
    """Module form of ``grad_reverse`` with a settable ``coefficient``."""

    def __init__(self, coefficient: float = 1.0) -> None:
        super().__init__()
        self.coefficient = coefficient

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coefficient)


def dann_coefficient(progress: float, gamma: float = 10.0) -> float:
    """DANN's ramp λ(p) = 2 / (1 + exp(−γ p)) − 1 for training progress p ∈ [0, 1].

    Starts at 0 so the untrained classifier's noisy gradient does not disturb early features.
    """
    return 2.0 / (1.0 + math.exp(-gamma * float(progress))) - 1.0
