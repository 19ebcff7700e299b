"""OVANet's one-vs-all loss, open-set entropy and test-time known probability, by hand."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.one_vs_all import known_probability, one_vs_all_loss, open_set_entropy


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _open_logits(differences: list[list[float]]) -> torch.Tensor:
    """``[B, 2, K]`` logits with negative row 0 and positive row ``positive − negative``."""
    positive = torch.tensor(differences)
    return torch.stack([torch.zeros_like(positive), positive], dim=1)


def test_positive_term_and_hardest_negative_by_hand() -> None:
    # p(1 | k) = σ(d_k) with d = (2, 0, −1), label 0.
    positive, negative = one_vs_all_loss(_open_logits([[2.0, 0.0, -1.0]]), torch.tensor([0]))
    assert positive.item() == pytest.approx(-math.log(_sigmoid(2.0)), rel=1e-6)
    # negatives: k=1 −log σ(0) = log 2, k=2 −log σ(1) = 0.313 → the hardest is log 2.
    assert negative.item() == pytest.approx(math.log(2), rel=1e-6)


def test_terms_are_batch_means() -> None:
    logits = _open_logits([[2.0, 0.0], [0.0, -3.0]])
    positive, negative = one_vs_all_loss(logits, torch.tensor([0, 1]))
    # sample 0: pos −log σ(2), neg −log σ(0); sample 1: pos −log σ(−3), neg −log σ(0)
    assert positive.item() == pytest.approx((-math.log(_sigmoid(2)) - math.log(_sigmoid(-3))) / 2,
                                            rel=1e-6)
    assert negative.item() == pytest.approx(math.log(2), rel=1e-6)


def test_open_set_entropy_is_the_mean_binary_entropy() -> None:
    def binary_entropy(p: float) -> float:
        return -(p * math.log(p) + (1 - p) * math.log(1 - p))

    logits = _open_logits([[0.0, 3.0], [-1.0, 0.0]])
    expected = (2 * math.log(2) + binary_entropy(_sigmoid(3)) + binary_entropy(_sigmoid(-1))) / 4
    assert open_set_entropy(logits).item() == pytest.approx(expected, rel=1e-6)


def test_known_probability_reads_the_top_closed_class_head() -> None:
    open_logits = _open_logits([[-1.0, 2.0], [-1.0, 2.0]])
    closed = torch.tensor([[5.0, 1.0], [0.0, 1.0]])
    # sample 0 → class 0 (σ(−1) < ½ although head 1 says yes), sample 1 → class 1 (σ(2))
    assert known_probability(closed, open_logits).tolist() == pytest.approx(
        [_sigmoid(-1.0), _sigmoid(2.0)], rel=1e-6)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match=r"\[B, 2, K\]"):
        open_set_entropy(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="targets must lie in 0..1"):
        one_vs_all_loss(torch.zeros(1, 2, 2), torch.tensor([2]))
    with pytest.raises(ValueError, match="do not match"):
        known_probability(torch.zeros(1, 3), torch.zeros(1, 2, 2))
