"""Momentum (EMA) copies of a network: MoCo's key encoder, UEM's frozen stage-1 copy."""
from __future__ import annotations

import copy

import torch
from torch import nn


def momentum_copy(module: nn.Module) -> nn.Module:
    """A deep copy with gradients off: updated only by ``momentum_update`` (or never)."""
    clone = copy.deepcopy(module)
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone


@torch.no_grad()
def momentum_update(target: nn.Module, source: nn.Module, momentum: float) -> None:
    """θ_target ← m θ_target + (1 − m) θ_source for parameters; buffers are copied."""
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must lie in [0, 1], got {momentum}")
    for target_param, source_param in zip(target.parameters(), source.parameters()):
        target_param.mul_(momentum).add_(source_param.detach(), alpha=1.0 - momentum)
    for target_buffer, source_buffer in zip(target.buffers(), source.buffers()):
        target_buffer.copy_(source_buffer)
