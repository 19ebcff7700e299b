"""UniOT (label-free): CCD's mass rule on hand-built prototypes, adaptive filling, β, resume."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from u2cdr.methods._trainer import TrainingInterrupted
from u2cdr.methods.uniot import adaptive_filling, common_class_detection
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="uniot", backbone=dict(type="small_cnn", width=8), batch_size=16, lr=0.05,
            num_clusters=4, target_prototypes=4, ccd_fill=16)
PROTOTYPES = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
UNIFORM = torch.full((2,), 0.5, dtype=torch.float64)


def _build(**overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def _hand_built():
    method = _build(head="linear", low_dim=2)
    method.build_heads(2)
    method.classifier.set_prototypes(PROTOTYPES)
    return method


def _unit(rows: list[list[float]]) -> torch.Tensor:
    return F.normalize(torch.tensor(rows), dim=1)


def test_mass_rule_flags_exactly_the_queries_that_keep_their_mass() -> None:
    """Two queries on a prototype, two far from both (best cosine −0.6 and 0.6 < γ): two
    positives and two negatives need no filling; the far ones transport less than 1/4."""
    method = _hand_built()
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [-0.6, -0.8], [0.6, -0.8]], dtype=np.float32)
    detection = method.detect(queries)
    assert (detection.best_mass[:2] > 0.25).all() and (detection.best_mass[2:] < 0.25).all()
    assert detection.labels[:2].tolist() == [0, 1]
    assert method.detect_private(queries, queries).tolist() == [False, False, True, True]


def test_common_threshold_counts_every_row_and_source_private_prototypes_train_nothing() -> None:
    rows = _unit([[1.0, 0.0]] * 3 + [[0.0, 1.0]] + [[-1.0, -1.0]] * 4)
    similarity = rows @ PROTOTYPES.t()
    detection = common_class_detection(similarity, UNIFORM)
    assert detection.column_mass.sum().item() == pytest.approx(1.0)
    assert detection.common.tolist() == (detection.best_mass > 1 / 8).tolist() == [True] * 4 + [False] * 4
    # prototype 1 receives less than 1/K = ½ of the mass: its one common row gives no label
    assert detection.column_mass[1] < 0.5
    assert detection.confident.tolist() == [True, True, True] + [False] * 5
    skipped = common_class_detection(similarity, UNIFORM, skip_rows=3)
    assert torch.equal(skipped.best_mass, detection.best_mass[3:])
    assert skipped.common.tolist() == [True, False, False, False, False]


def test_adaptive_filling_balances_positive_and_negative_rows() -> None:
    generator = torch.Generator().manual_seed(0)
    # three positives (cosine > 0.7), one negative → two synthetic private rows, each
    # normalize(½ f + ½ p_farthest) of some row
    rows = _unit([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, -0.2]])
    similarity, fake_size = adaptive_filling(rows, PROTOTYPES, UNIFORM, generator=generator)
    assert fake_size == 2 and torch.equal(similarity[2:], rows @ PROTOTYPES.t())
    farthest = PROTOTYPES[(rows @ PROTOTYPES.t()).argmin(dim=1)]
    candidates = F.normalize(0.5 * rows + 0.5 * farthest, dim=1) @ PROTOTYPES.t()
    for fake in similarity[:2]:
        assert any(torch.allclose(fake, candidate) for candidate in candidates)
    # one positive, three negatives → two copies of the confidently common row
    rows = _unit([[1.0, 0.0], [-1.0, -1.0], [-1.0, -0.5], [-0.5, -1.0]])
    similarity, fake_size = adaptive_filling(rows, PROTOTYPES, UNIFORM, generator=generator)
    assert fake_size == 2
    assert torch.equal(similarity[0], similarity[2]) and torch.equal(similarity[1], similarity[2])
    # balanced already: nothing added
    _, fake_size = adaptive_filling(_unit([[1.0, 0.0], [-1.0, 0.0]]), PROTOTYPES, UNIFORM)
    assert fake_size == 0


def test_ccd_term_trains_on_confident_queries_and_updates_the_column_mass() -> None:
    method = _hand_built()
    method.ccd_fill = 0                  # rows = the batch only: no random memory rows
    features = _unit([[1.0, 0.0], [0.95, 0.05], [-0.6, -0.8], [0.5, -0.8]])  # 2 pos, 2 neg
    loss = method._ccd(features, bank=features)
    detection = common_class_detection(features @ PROTOTYPES.t(), UNIFORM, tolerance=1e-4)
    confident = detection.confident
    assert confident.tolist() == [True, True, False, False]
    expected = F.cross_entropy(method.classifier(features[confident]), detection.labels[confident])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert method.column_mass.tolist() == pytest.approx(
        (0.7 * UNIFORM + 0.3 * detection.column_mass.double()).tolist(), rel=1e-6)


def test_ccd_waits_for_its_start_epoch_and_training_resumes_exactly(tiny_pair, tmp_path) -> None:
    interrupted = _build(epochs=2, ccd_start_epoch=1)
    interrupted.stop_after_epoch = 1
    with pytest.raises(TrainingInterrupted):
        interrupted.fit(tiny_pair, tmp_path / "cell")
    assert interrupted.column_mass.tolist() == pytest.approx([0.25] * 4)
    resumed = _build(epochs=2, ccd_start_epoch=1)
    resumed.fit(tiny_pair, tmp_path / "cell")
    straight = _build(epochs=2, ccd_start_epoch=1)
    straight.fit(tiny_pair, tmp_path / "straight")
    assert resumed.history == straight.history
    assert straight.history[0]["L_CCD_A"] == 0.0
    assert torch.equal(resumed.column_mass, straight.column_mass)
    assert not torch.equal(straight.column_mass, torch.full((4,), 0.25, dtype=torch.float64))
    query = straight.embed(tiny_pair.query)
    assert np.array_equal(resumed.embed(tiny_pair.query), query)
    assert np.array_equal(resumed.detect_private(query, query), straight.detect_private(query, query))


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="target_prototypes >= 2"):
        _build(target_prototypes=1)
    with pytest.raises(ConfigError, match="mass_momentum must lie in"):
        _build(mass_momentum=1.0)
    with pytest.raises(ValueError, match="skip_rows must lie in"):
        common_class_detection(torch.zeros(2, 2), UNIFORM, skip_rows=2)


def test_pcd_neighbours_exclude_the_sample_itself() -> None:
    """With the bank holding the batch itself, each sample's neighbour is another row."""
    method = _hand_built()
    method.build_method_heads(2)
    features = _unit([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    bank = features.clone()
    session = SimpleNamespace(banks={"A": SimpleNamespace(entries=bank)})
    terms = method.method_terms(session, features, torch.tensor([0, 1, 2]), features[:1],
                                torch.tensor([0]), method.classifier(features[:1]))
    assert torch.isfinite(terms["L_PCD_A"]) and terms["L_PCD_A"].item() > 0
