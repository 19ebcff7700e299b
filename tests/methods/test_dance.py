"""DANCE (label-free): the entropy rule on hand-built prototypes, its terms by hand, resume."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from u2cdr.methods._trainer import TrainingInterrupted
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="dance", backbone=dict(type="small_cnn", width=8), batch_size=16, lr=0.05,
            num_clusters=4)


def _build(**overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def _entropy(logits: list[float]) -> float:
    z = sum(math.exp(v) for v in logits)
    return -sum(math.exp(v) / z * (v - math.log(z)) for v in logits)


def _hand_built(**overrides):
    """2-d embedding, gallery prototypes e₀ and e₁, T = 0.1, so ρ = log(2)/2 = 0.347."""
    method = _build(head="linear", low_dim=2, classifier_temperature=0.1, **overrides)
    method.build_heads(2)
    method.classifier.set_prototypes(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    return method


QUERIES = np.array([[1.0, 0.0], [0.8, 0.6], [0.9, 0.3], [0.6, 0.6], [-1.0, 0.0]], dtype=np.float32)


def test_entropy_rule_flags_exactly_the_queries_above_rho() -> None:
    method = _hand_built()
    # logits = cos/T: (10, 0), (8, 6), (9.49, 3.16), (7.07, 7.07), (−10, 0)
    norms = np.linalg.norm(QUERIES, axis=1, keepdims=True)
    expected = [_entropy(list(row / 0.1)) for row in QUERIES / norms]
    assert method.query_entropy(QUERIES).tolist() == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert method.threshold == pytest.approx(math.log(2) / 2)
    # (8, 6): H = 0.365 > 0.347 (just); (7.07, 7.07): H = log 2. (−10, 0) is confidently class 1:
    # the entropy rule judges against the prototypes relative to each other only.
    assert method.detect_private(QUERIES, QUERIES).tolist() == [False, True, False, True, False]
    assert _hand_built(entropy_threshold=0.4).detect_private(QUERIES, QUERIES).tolist() == \
        [False, False, False, True, False]


def test_neighbourhood_and_separation_terms_by_hand() -> None:
    method = _hand_built()
    z_a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    session = SimpleNamespace(banks={"A": SimpleNamespace(entries=bank)})
    terms = method.method_terms(session, z_a, torch.tensor([0, 1]), z_a[:1], torch.tensor([0]),
                                method.classifier(z_a[:1]))
    # row e0: prototypes (10, 0), bank (masked −10, masked −10, 6), batch (self −10, 0)
    # row e1: prototypes (0, 10), bank (−10, −10, 8), batch (0, −10)
    expected_nc = (_entropy([10, 0, -10, -10, 6, -10, 0]) + _entropy([0, 10, -10, -10, 8, 0, -10])) / 2
    assert terms["L_NC_A"].item() == pytest.approx(expected_nc, rel=1e-5)
    # both rows: entropy of (10, 0) ≈ 5e-4, |H − ρ| = 0.346 < m = 0.5 → −0.5 each
    assert terms["L_ES_A"].item() == pytest.approx(-0.5)
    method.separation_margin = 0.1
    terms = method.method_terms(session, z_a, torch.tensor([0, 1]), z_a[:1], torch.tensor([0]),
                                method.classifier(z_a[:1]))
    assert terms["L_ES_A"].item() == pytest.approx(-(math.log(2) / 2 - _entropy([10, 0])), rel=1e-5)


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
    assert np.array_equal(resumed.query_entropy(query), straight.query_entropy(query))


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="entropy_threshold must be > 0"):
        _build(entropy_threshold=0.0)
    with pytest.raises(ConfigError, match="separation_margin must"):
        _build(separation_margin=-0.1)
