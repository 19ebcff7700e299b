"""ClassifierAlignment (CoDA cross-domain classifier alignment) by hand."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.classifier_alignment import ClassifierAlignment

LOGITS_A = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
LOGITS_B = torch.tensor([[0.0, 0.0], [1.0, -1.0]])


def test_l1_and_squared_l2_on_logits() -> None:
    # per sample: |1|+|2| = 3 and |−1|+|1| = 2 → 2.5;  1+4 = 5 and 1+1 = 2 → 3.5
    assert ClassifierAlignment("l1")(LOGITS_A, LOGITS_B).item() == pytest.approx(2.5)
    assert ClassifierAlignment("l2")(LOGITS_A, LOGITS_B).item() == pytest.approx(3.5)


def test_softmax_outputs() -> None:
    # softmax(1, 2) = (1/(1+e), e/(1+e)) against (½, ½); softmax(1, −1) = (e²/(e²+1), 1/(e²+1))
    first = 2 * abs(1 / (1 + math.e) - 0.5)
    second = 2 * abs(math.exp(2) / (math.exp(2) + 1) - 0.5)
    loss = ClassifierAlignment("l1", softmax=True)(LOGITS_A, LOGITS_B)
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_symmetric_and_zero_when_the_classifiers_agree() -> None:
    alignment = ClassifierAlignment("l1")
    assert alignment(LOGITS_A, LOGITS_B).item() == alignment(LOGITS_B, LOGITS_A).item()
    assert alignment(LOGITS_A, LOGITS_A.clone()).item() == 0.0


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="'l3'.*l1, l2"):
        ClassifierAlignment("l3")
    with pytest.raises(ValueError, match="same shape"):
        ClassifierAlignment()(torch.zeros(2, 3), torch.zeros(3, 3))
