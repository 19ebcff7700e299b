"""SupCon's L_out on a hand-computed case."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.supervised_contrastive import SupervisedContrastiveLoss


def test_supcon_matches_a_hand_computed_value() -> None:
    features = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    # τ = 1. Anchors 0 and 1: the positive scores 1, the others {1, 0, 0} or {1, 0, 0} → each
    # −log(e / (2e + 2)). Anchors 2 and 3: positive 1, others {0, 0, 0} → −log(e / (e + 3)).
    # Anchor 4 has no positive and is skipped.
    expected = (2 * -math.log(math.e / (2 * math.e + 2)) + 2 * -math.log(math.e / (math.e + 3))) / 4
    loss = SupervisedContrastiveLoss(temperature=1.0)(features, labels)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_supcon_averages_over_several_positives_and_handles_no_positive() -> None:
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    loss = SupervisedContrastiveLoss(temperature=0.5)(features, torch.tensor([0, 0, 0]))
    # τ = 0.5, logits 2·cos. Anchor 0: others (0, 2); positives both: −½[(0 − lse) + (2 − lse)],
    # lse = log(1 + e²). Anchor 1: others (0, 0), lse = log 2, −½[(0 − log 2)·2]. Anchor 2 = anchor 0.
    lse = math.log(1 + math.exp(2))
    anchor_0 = -0.5 * ((0 - lse) + (2 - lse))
    expected = (2 * anchor_0 + math.log(2)) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)

    alone = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    zero = SupervisedContrastiveLoss()(alone, torch.tensor([0, 1]))
    assert zero.item() == 0.0 and zero.requires_grad
    with pytest.raises(ValueError, match="temperature"):
        SupervisedContrastiveLoss(temperature=0.0)
