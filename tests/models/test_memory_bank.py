"""Momentum memory bank (UEM Eq. 5) checked by hand on 2-d vectors."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.models.memory_bank import MomentumMemoryBank

INITIAL = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])


def _bank(momentum: float, renormalize: bool) -> MomentumMemoryBank:
    bank = MomentumMemoryBank(num_entries=3, dim=2, momentum=momentum, renormalize=renormalize)
    bank.initialize(INITIAL)
    return bank


def test_update_without_renormalisation_is_the_plain_average() -> None:
    bank = _bank(momentum=0.5, renormalize=False)
    bank.update(torch.tensor([0]), torch.tensor([[0.0, 1.0]]))
    # m_0 = 0.5·(1, 0) + 0.5·(0, 1) = (0.5, 0.5); the other entries are untouched.
    assert torch.allclose(bank.entries, torch.tensor([[0.5, 0.5], [0.0, 1.0], [0.6, 0.8]]))


def test_update_with_uem_momentum_is_renormalised() -> None:
    bank = _bank(momentum=0.99, renormalize=True)
    bank.update(torch.tensor([2]), torch.tensor([[-1.0, 0.0]]))
    # 0.99·(0.6, 0.8) + 0.01·(−1, 0) = (0.584, 0.792), then divided by its norm.
    norm = math.sqrt(0.584 ** 2 + 0.792 ** 2)
    assert torch.allclose(bank.entries[2], torch.tensor([0.584 / norm, 0.792 / norm]))
    assert torch.allclose(bank.entries[:2], INITIAL[:2])


def test_index_drawn_twice_is_updated_once_with_the_mean_feature() -> None:
    bank = _bank(momentum=0.5, renormalize=False)
    bank.update(torch.tensor([1, 1]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    # mean feature (0.5, 0.5); m_1 = 0.5·(0, 1) + 0.5·(0.5, 0.5) = (0.25, 0.75).
    assert torch.allclose(bank.entries[1], torch.tensor([0.25, 0.75]))


def test_update_does_not_track_gradients() -> None:
    bank = _bank(momentum=0.9, renormalize=True)
    features = torch.tensor([[0.0, 1.0]], requires_grad=True)
    bank.update(torch.tensor([0]), features * 2)
    assert not bank.entries.requires_grad


def test_initialisation_normalises_and_checks_shape() -> None:
    bank = MomentumMemoryBank(num_entries=2, dim=2)
    bank.initialize(torch.tensor([[3.0, 4.0], [0.0, 2.0]]))
    assert torch.allclose(bank.entries, torch.tensor([[0.6, 0.8], [0.0, 1.0]]))
    assert torch.allclose(bank.mean(), torch.tensor([0.3, 0.9]))
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        bank.initialize(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="momentum must be in"):
        MomentumMemoryBank(num_entries=2, dim=2, momentum=1.0)


def test_bank_round_trips_through_a_weights_only_checkpoint(tmp_path) -> None:
    bank = _bank(momentum=0.99, renormalize=True)
    torch.save(bank.state_dict(), tmp_path / "bank.pth")
    restored = MomentumMemoryBank(num_entries=3, dim=2)
    restored.load_state_dict(torch.load(tmp_path / "bank.pth", weights_only=True))
    assert torch.equal(restored.entries, bank.entries)
    assert len(restored) == 3
