"""NT-Xent (SimCLR Eq. 1) against values computed by hand on two images × two views."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.nt_xent import NTXent

# Image 1: views (1, 0) and (0.6, 0.8); image 2: views (0, 1) and (0, 2) (not unit: NT-Xent
# uses cosine similarity, so (0, 2) counts as (0, 1)).
FIRST = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
SECOND = torch.tensor([[0.6, 0.8], [0.0, 2.0]])


def test_two_images_two_views_by_hand() -> None:
    # Cosines: a=(1,0), b=(0,1), a'=(0.6,0.8), b'=(0,1).
    #   a : positive a' 0.6, negatives b 0,   b' 0
    #   b : positive b' 1,   negatives a 0,   a' 0.8
    #   a': positive a 0.6,  negatives b 0.8, b' 0.8
    #   b': positive b 1,    negatives a 0,   a' 0.8
    tau = 0.5
    e = lambda cosine: math.exp(cosine / tau)  # noqa: E731
    losses = [-math.log(e(0.6) / (e(0.6) + e(0) + e(0))),
              -math.log(e(1.0) / (e(1.0) + e(0) + e(0.8))),
              -math.log(e(0.6) / (e(0.6) + e(0.8) + e(0.8))),
              -math.log(e(1.0) / (e(1.0) + e(0) + e(0.8)))]
    loss = NTXent(temperature=tau)(FIRST, SECOND)
    assert loss.item() == pytest.approx(sum(losses) / 4, rel=1e-6)


def test_swapping_the_views_changes_nothing_and_both_views_get_gradients() -> None:
    first = FIRST.clone().requires_grad_(True)
    second = SECOND.clone().requires_grad_(True)
    loss = NTXent(0.5)(first, second)
    assert loss.item() == pytest.approx(NTXent(0.5)(SECOND, FIRST).item(), rel=1e-6)
    loss.backward()
    assert first.grad.abs().sum() > 0 and second.grad.abs().sum() > 0


def test_a_lower_temperature_sharpens_a_correct_match() -> None:
    # Views of each image identical and the images orthogonal: the loss falls towards 0 with τ.
    views = torch.eye(3)
    sharp, soft = NTXent(0.1)(views, views).item(), NTXent(1.0)(views, views).item()
    expected_soft = -math.log(math.e / (math.e + 4))
    assert soft == pytest.approx(expected_soft, rel=1e-6)
    assert sharp < 1e-3 < soft


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="temperature must be > 0"):
        NTXent(0.0)
    with pytest.raises(ValueError, match="one shape"):
        NTXent()(torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="at least 2 images"):
        NTXent()(torch.ones(1, 2), torch.ones(1, 2))
