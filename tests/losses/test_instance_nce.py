"""InstanceNCE (UEM Eq. 6) against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.instance_nce import InstanceNCE

# Bank of N = 3 unit vectors; a batch of two instances (0 and 1) whose features equal their entries.
BANK = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
FEATURES = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
INDICES = torch.tensor([0, 1])


def test_whole_bank_negatives() -> None:
    loss = InstanceNCE(temperature=0.5, negatives="bank")(FEATURES, INDICES, BANK)
    # sample 0: logits (2, 0, −2) → −log e²/(e²+1+e⁻²) = log(1 + e⁻² + e⁻⁴)
    # sample 1: logits (0, 2, 0)  → −log e²/(e²+2)      = log(1 + 2e⁻²)
    expected = (math.log(1 + math.exp(-2) + math.exp(-4)) + math.log(1 + 2 * math.exp(-2))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_batch_negatives_use_only_the_batch_entries() -> None:
    loss = InstanceNCE(temperature=0.5, negatives="batch")(FEATURES, INDICES, BANK)
    # entry 2 is outside the batch: each sample sees logits (2, 0) → log(1 + e⁻²)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-6)


def test_sum_reduction_is_the_printed_equation() -> None:
    mean = InstanceNCE(temperature=0.07)(FEATURES, INDICES, BANK)
    total = InstanceNCE(temperature=0.07, reduction="sum")(FEATURES, INDICES, BANK)
    assert total.item() == pytest.approx(2 * mean.item(), rel=1e-6)


def test_positive_is_the_own_bank_entry() -> None:
    """Swapping the batch's indices turns the right answers into the wrong ones."""
    loss_fn = InstanceNCE(temperature=0.07)
    assert loss_fn(FEATURES, INDICES, BANK) < 0.01
    assert loss_fn(FEATURES, INDICES.flip(0), BANK) > 10.0


def test_gradient_reaches_features_not_bank() -> None:
    features = FEATURES.clone().requires_grad_(True)
    bank = BANK.clone()
    InstanceNCE(temperature=0.5)(features, INDICES, bank).backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    assert bank.grad is None


def test_bad_arguments_list_the_choices() -> None:
    with pytest.raises(ValueError, match="'queue'.*bank, batch"):
        InstanceNCE(negatives="queue")
    with pytest.raises(ValueError, match="'max'.*mean, sum"):
        InstanceNCE(reduction="max")
    with pytest.raises(ValueError, match="temperature must be positive"):
        InstanceNCE(temperature=0.0)
