"""OVANet (label-free): the OVA rule on hand-built heads, its loss terms by hand, resume."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from u2cdr.methods._trainer import TrainingInterrupted
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="ovanet", backbone=dict(type="small_cnn", width=8), batch_size=16, lr=0.05,
            num_clusters=4)


def _build(**overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _hand_built():
    """2-d embedding, T = 1; C₁ prototypes e₀, e₁; OVA heads (rows: neg₀, neg₁, pos₀, pos₁):
    class 0 accepts only features close to e₀, class 1 those on the upper half."""
    method = _build(head="linear", low_dim=2, classifier_temperature=1.0)
    method.build_heads(2)
    method.classifier.set_prototypes(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    method.open_heads.set_prototypes(torch.tensor([[1.0, 0.5], [-1.0, 0.0], [1.0, 0.0], [0.6, 0.8]]))
    return method


def test_ova_rule_flags_exactly_the_queries_their_top_class_rejects() -> None:
    method = _hand_built()
    n0 = np.array([1.0, 0.5]) / math.sqrt(1.25)
    queries = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    # top class: 0, 0, 1, 1, 1 (ties impossible). p(known) = σ(pos·q − neg·q) of that class:
    expected_scores = [_sigmoid(1.0 - n0[0]), _sigmoid(0.8 - n0 @ [0.8, 0.6]),
                       _sigmoid(1.0 + 0.6), _sigmoid(0.8), _sigmoid(-0.6 - 1.0)]
    scores = method.known_scores(queries)
    assert scores.tolist() == pytest.approx(expected_scores, rel=1e-5)
    # q1 is private although head 1 would accept it (σ(1.76)): the rule reads the top class only.
    assert method.detect_private(queries, np.zeros((3, 2), np.float32)).tolist() == \
        [False, True, False, False, True]
    method.known_threshold = 0.4   # σ(−0.184) = 0.454 is above 0.4: q1 becomes shared
    assert method.detect_private(queries, np.zeros((3, 2), np.float32)).tolist() == \
        [False, False, False, False, True]


def test_ova_and_open_entropy_terms_by_hand() -> None:
    method = _hand_built()
    n0 = np.array([1.0, 0.5]) / math.sqrt(1.25)
    method.estimates.tensors["gallery"] = torch.tensor([0, 1])
    z_b = torch.tensor([[1.0, 0.0]])
    z_a = torch.tensor([[0.0, 1.0]])
    terms = method.method_terms(None, z_a, torch.tensor([0]), z_b, torch.tensor([0]),
                                method.classifier(z_b))
    # gallery label 0: positive −log σ(1 − n0·e0); hardest negative: head 1, −log σ(−1 − 0.6)
    assert terms["L_OVA_B"].item() == pytest.approx(
        -math.log(_sigmoid(1.0 - n0[0])) - math.log(_sigmoid(-1.6)), rel=1e-5)

    def binary_entropy(p: float) -> float:
        return -(p * math.log(p) + (1 - p) * math.log(1 - p))

    # query e1: head 0 difference 0 − n0·e1, head 1 difference 0.8 − 0
    assert terms["L_OEM_A"].item() == pytest.approx(
        (binary_entropy(_sigmoid(-n0[1])) + binary_entropy(_sigmoid(0.8))) / 2, rel=1e-5)
    assert method.loss_weights["L_OVA_B"] == 0.5 and method.loss_weights["L_OEM_A"] == 0.1


def test_interrupted_fit_resumes_and_matches_a_straight_run(tiny_pair, tmp_path) -> None:
    interrupted = _build(epochs=2)
    interrupted.stop_after_epoch = 1
    with pytest.raises(TrainingInterrupted):
        interrupted.fit(tiny_pair, tmp_path / "cell")
    resumed = _build(epochs=2)
    resumed.fit(tiny_pair, tmp_path / "cell")
    straight = _build(epochs=2)
    straight.fit(tiny_pair, tmp_path / "straight")
    assert resumed.history == straight.history
    query = straight.embed(tiny_pair.query)
    assert np.array_equal(resumed.embed(tiny_pair.query), query)
    gallery = straight.embed(tiny_pair.gallery)
    assert np.array_equal(resumed.detect_private(query, gallery),
                          straight.detect_private(query, gallery))


def test_describe_states_the_adaptation_and_the_roles(tiny_pair, tmp_path) -> None:
    method = _build(epochs=1)
    method.fit(tiny_pair, tmp_path)
    info = method.describe()
    assert "K-means cluster pseudo-labels of the gallery domain B" in info["adaptation"]
    assert "source = gallery B" in info["gap_decisions"]["roles"]
    assert info["num_classes"] == 4 and method.family == "open-set domain adaptation"


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="known_threshold must lie in"):
        _build(known_threshold=1.0)
    with pytest.raises(ConfigError, match="ova_weight and open_entropy_weight"):
        _build(ova_weight=-1.0)
    with pytest.raises(ValueError, match=r"features must be \[N, 2\]"):
        _hand_built().detect_private(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))
