"""QueueInfoNCE (MoCo InfoNCE with own-image masking) against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.queue_info_nce import QueueInfoNCE

QUERY = torch.tensor([[1.0, 0.0]])
KEY = torch.tensor([[1.0, 0.0]])
QUEUE = torch.tensor([[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
OWNERS = torch.tensor([5, 7, 9])


def test_unmasked_queue() -> None:
    # logits: positive 1, negatives (0, 1, −1).
    loss = QueueInfoNCE(temperature=1.0)(QUERY, KEY, QUEUE)
    expected = -math.log(math.e / (math.e + 1 + math.e + math.exp(-1)))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_own_older_key_is_masked() -> None:
    # Image 7 owns queue slot 1, which drops out of the denominator.
    loss = QueueInfoNCE(temperature=1.0)(QUERY, KEY, QUEUE, OWNERS, torch.tensor([7]))
    expected = -math.log(math.e / (math.e + 1 + math.exp(-1)))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_owners_and_indices_come_together() -> None:
    with pytest.raises(ValueError, match="both queue_owners and indices"):
        QueueInfoNCE()(QUERY, KEY, QUEUE, OWNERS, None)


def test_gradient_reaches_queries_only() -> None:
    query = QUERY.clone().requires_grad_(True)
    key = KEY.clone().requires_grad_(True)
    QueueInfoNCE(temperature=0.2)(query, key, QUEUE).backward()
    assert query.grad.abs().sum() > 0 and key.grad is None
