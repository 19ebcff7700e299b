"""NeighbourNCE (multi-positive InfoNCE, DN²A) against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from u2cdr.losses.neighbour_nce import NeighbourNCE

# Anchor e1 against candidates e1, e2, −e1 at τ = 1: logits (1, 0, −1).
FEATURES = torch.tensor([[1.0, 0.0]])
CANDIDATES = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
LOG_Z = math.log(math.e + 1.0 + math.exp(-1.0))


def test_positives_are_averaged_outside_the_log() -> None:
    mask = torch.tensor([[True, True, False]])
    loss = NeighbourNCE(temperature=1.0)(FEATURES, CANDIDATES, mask)
    assert loss.item() == pytest.approx(-((1.0 - LOG_Z) + (0.0 - LOG_Z)) / 2, rel=1e-6)


def test_one_positive_is_plain_cross_entropy() -> None:
    torch.manual_seed(0)
    features, candidates = F.normalize(torch.randn(3, 4), dim=1), F.normalize(torch.randn(6, 4), dim=1)
    targets = torch.tensor([5, 0, 2])
    mask = F.one_hot(targets, 6).bool()
    loss = NeighbourNCE(temperature=0.1)(features, candidates, mask)
    expected = F.cross_entropy(features @ candidates.t() / 0.1, targets)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_adding_a_far_positive_raises_the_loss() -> None:
    near_only = NeighbourNCE(temperature=1.0)(FEATURES, CANDIDATES, torch.tensor([[True, False, False]]))
    with_far = NeighbourNCE(temperature=1.0)(FEATURES, CANDIDATES, torch.tensor([[True, False, True]]))
    assert with_far.item() == pytest.approx(near_only.item() + 1.0, rel=1e-6)  # (0 + 2) / 2 more


def test_candidate_mask_drops_candidates_from_the_denominator() -> None:
    """Without −e1 (logit −1) the partition is e + 1: ℓ = −(1 − log(e + 1))."""
    loss = NeighbourNCE(temperature=1.0)(FEATURES, CANDIDATES, torch.tensor([[True, False, False]]),
                                         candidate_mask=torch.tensor([[True, True, False]]))
    assert loss.item() == pytest.approx(-(1.0 - math.log(math.e + 1.0)), rel=1e-6)
    with pytest.raises(ValueError, match="every positive must also be a candidate"):
        NeighbourNCE()(FEATURES, CANDIDATES, torch.tensor([[True, False, True]]),
                       candidate_mask=torch.tensor([[True, True, False]]))


def test_gradient_reaches_the_anchors_only() -> None:
    features, candidates = FEATURES.clone().requires_grad_(True), CANDIDATES.clone().requires_grad_(True)
    NeighbourNCE(temperature=0.5)(features, candidates, torch.tensor([[True, True, False]])).backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    assert candidates.grad is None


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="temperature must be positive"):
        NeighbourNCE(temperature=-1.0)
    with pytest.raises(ValueError, match=r"anchors \[1\] have no positive"):
        NeighbourNCE()(FEATURES.repeat(2, 1), CANDIDATES, torch.tensor([[True, False, False],
                                                                         [False, False, False]]))
    with pytest.raises(ValueError, match=r"shape \(1, 3\)"):
        NeighbourNCE()(FEATURES, CANDIDATES, torch.tensor([[True, False]]))
