"""UEM: Eq. 10's α, App. B.1's open-set rule, resume inside stage 2, steps that learn, configs."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from u2cdr.methods._trainer import EpochCheckpoint, TrainingInterrupted
from u2cdr.methods.uem import UEM, progressive_weight
from u2cdr.methods.uem_open_set import detect_private_uem, private_queries
from u2cdr.models.prototypes import ElbowSettings
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="uem", backbone=dict(type="small_cnn", width=8), idse_epochs=1, cdsm_epochs=2,
            batch_size=16, lr=0.05, elbow_k_max=6, elbow_every=2)


def _build(**overrides) -> UEM:
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def test_progressive_weight_matches_eq_10() -> None:
    assert progressive_weight(45, 100) == pytest.approx(1 / (1 + np.exp(5)), rel=1e-9)
    assert progressive_weight(45, 100) == pytest.approx(0.0067, abs=5e-5)
    assert progressive_weight(50, 100) == 0.5
    assert progressive_weight(55, 100) == pytest.approx(0.9933, abs=5e-5)
    assert progressive_weight(0, 2000) == 0.0  # no overflow far from the centre


def _blob(centre: tuple[float, float], count: int, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(centre) + 0.1 * rng.normal(size=(count, 2))


def test_open_set_rule_flags_the_query_cluster_without_a_gallery_partner() -> None:
    # Query: digits-like blobs at (0,0), (10,0), (0,10); gallery has only the first two.
    # Bank means differ, so Eq. 8 shifts the gallery prototypes by (−1.67, 3.33); both shared
    # pairs stay 3.7 apart (< the 10-unit intra-domain gap) and merge; (0,10) stays unmatched.
    rng = np.random.default_rng(0)
    query = np.concatenate([_blob((0, 0), 30, rng), _blob((10, 0), 30, rng), _blob((0, 10), 30, rng)])
    gallery = np.concatenate([_blob((0, 0), 20, rng), _blob((10, 0), 20, rng)])
    private, report = detect_private_uem(query, gallery, elbow=ElbowSettings(k_min=1, k_max=8),
                                         seed=0)
    assert (report.num_query_clusters, report.num_gallery_clusters) == (3, 2)  # Elbow per domain
    assert private.tolist() == [False] * 60 + [True] * 30
    assert report.num_merged == 2 and report.flagged_unmerged == 30
    assert report.flagged_by_distance == 0
    # One count for both domains splits a gallery blob: its two halves are closer than any
    # cross-domain pair, so Eq. 9 merges nothing and every query is flagged.
    private_three, report_three = detect_private_uem(query, gallery, num_clusters=3, seed=0)
    assert report_three.num_merged == 0 and private_three.all()
    # The local reading bounds each pair by its own members' nearest same-domain gaps: the
    # unsplit gallery blob (10 from its neighbour) merges with its query cluster, the pair
    # holding a split half stays bound by the halves' small gap.
    private_local, report_local = detect_private_uem(query, gallery, num_clusters=3, seed=0,
                                                     merge_threshold="local")
    assert report_local.num_merged == 1
    assert private_local[90 - 30:].all() and private_local.sum() == 60


def test_distance_threshold_is_the_largest_cross_domain_delta_of_the_merged_pair() -> None:
    query = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 3.0]])
    gallery = np.array([[0.0, 1.0], [2.0, 0.0], [5.0, 5.0]])
    # Query cluster 0 = rows 0–1, merged with gallery cluster 0 = rows 0–1; query cluster 1 is
    # unmerged. D_0 = max δ over the 2×2 members = δ((1,0), (0,1)) = √2.
    private, thresholds = private_queries(query, gallery, np.array([0, 0, 1]), np.array([0, 0, 1]),
                                          np.array([[0, 0]]), num_query_clusters=2)
    delta = lambda u, v: (1 - np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v)) * np.linalg.norm(u - v)
    expected = max(delta(q, g) for q in query[:2] for g in gallery[:2])
    assert thresholds[0] == pytest.approx(expected) and thresholds[1] == -np.inf
    assert private.tolist() == [False, False, True]
    # A merged pair whose gallery cluster has no member cannot vouch for its queries (Eq. 27).
    private_empty, _ = private_queries(query, gallery, np.array([0, 0, 1]), np.array([1, 1, 1]),
                                       np.array([[0, 0]]), num_query_clusters=2)
    assert private_empty.tolist() == [True, True, True]


def test_interrupted_cdsm_resumes_in_stage_two_and_matches_a_straight_run(tiny_pair, tmp_path,
                                                                         caplog) -> None:
    interrupted = _build()
    interrupted.stop_after = {"cdsm": 1}
    with pytest.raises(TrainingInterrupted, match="cdsm: stopped after epoch 1/2"):
        interrupted.fit(tiny_pair, tmp_path / "cell")
    saved = EpochCheckpoint(tmp_path / "cell", "cdsm").load()  # weights_only=True
    assert saved["epoch"] == 1 and "domain_classifier" in saved["state"]
    assert EpochCheckpoint(tmp_path / "cell", "idse").load()["epoch"] == 1

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="u2cdr"):
        resumed = _build()
        resumed.fit(tiny_pair, tmp_path / "cell")
    assert "idse epoch 1/1" not in caplog.text and "cdsm epoch 1/2" not in caplog.text
    assert "cdsm epoch 2/2" in caplog.text and "cdsm: resumed from" in caplog.text

    straight = _build()
    straight.fit(tiny_pair, tmp_path / "straight")
    assert [row["loss"] for row in resumed.history["cdsm"]] == \
        [row["loss"] for row in straight.history["cdsm"]]
    for (key, value), other in zip(resumed.encoder.state_dict().items(),
                                   straight.encoder.state_dict().values()):
        assert torch.equal(value, other), key
    assert set(straight.history["cdsm"][0]) >= {"L_DAL", "L_SPR_A", "L_SPR_B", "L_SN2M_A",
                                               "L_SN2M_B", "K_A", "K_B", "merged"}


def _fixed_batch(pair, size: int = 16):
    query = torch.stack([pair.query.images()[i][0] for i in range(size)])
    gallery = torch.stack([pair.gallery.images()[i][0] for i in range(size)])
    return {"A": query, "B": gallery}, {"A": torch.arange(size), "B": torch.arange(size)}


def _banks(method: UEM, pair):
    from u2cdr.models.memory_bank import MomentumMemoryBank
    banks = {}
    for domain, data in (("A", pair.query), ("B", pair.gallery)):
        banks[domain] = MomentumMemoryBank(len(data), method.encoder.out_dim)
        banks[domain].initialize(torch.from_numpy(method._embed_head(data)))
    return banks


def test_one_idse_step_lowers_the_stage_one_objective(tiny_pair) -> None:
    method = _build(num_clusters=4)
    banks = _banks(method, tiny_pair)
    prototypes = method.prototypes.build({d: banks[d].entries for d in banks}, epoch=0)
    images, indices = _fixed_batch(tiny_pair)
    optimizer = torch.optim.SGD(method.encoder.parameters(), lr=0.05)

    def objective() -> torch.Tensor:
        features = {d: method.encoder(images[d]) for d in images}
        terms = method._idse_prototype_terms(features, indices, prototypes)
        assert set(terms) == {"L_PNCE_A", "L_SEL_A", "L_PNCE_B", "L_SEL_B"}
        return sum(terms.values()) + sum(method.instance_nce(features[d], indices[d],
                                                             banks[d].entries) for d in images)

    method.encoder.train()
    before = objective()
    before_features = method.embed(tiny_pair.query)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    assert objective().item() < before.item()
    assert not np.allclose(method.embed(tiny_pair.query), before_features)


@pytest.mark.parametrize("matching,negatives,names", [
    ("sn2m", "bank", {"L_SN2M_A", "L_SN2M_B"}), ("sn2m", "batch", {"L_SN2M_A", "L_SN2M_B"}),
    ("nearest_neighbour", "bank", {"L_NN_A", "L_NN_B"})])
def test_one_cdsm_step_lowers_the_matching_loss(matching, negatives, names, tiny_pair) -> None:
    method = _build(num_clusters=4, matching=matching, sn2m_negatives=negatives)
    banks = _banks(method, tiny_pair)
    prototypes = method.prototypes.build({d: banks[d].entries for d in banks}, epoch=0)
    images, indices = _fixed_batch(tiny_pair)
    optimizer = torch.optim.SGD(method.encoder.parameters(), lr=0.05)
    method.encoder.train()

    def objective() -> torch.Tensor:
        terms, rate = method._matching_terms({d: method.encoder(images[d]) for d in images},
                                             indices, banks, prototypes)
        assert set(terms) == names and 0.0 <= rate <= 1.0
        return sum(terms.values())

    before = objective()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    assert objective().item() < before.item()


def test_spr_starts_at_zero_because_the_frozen_copy_uses_batch_statistics(tiny_pair) -> None:
    method = _build()
    frozen = method._frozen_copy()
    images, _ = _fixed_batch(tiny_pair)
    method.encoder.train()
    features = method.encoder(images["A"])
    assert method.spr(features, frozen(images["A"])).item() == 0.0
    running_mean = [m.running_mean.clone() for m in frozen.modules() if hasattr(m, "running_mean")]
    frozen(images["B"])
    assert all(torch.equal(a, m.running_mean) for a, m in
               zip(running_mean, [m for m in frozen.modules() if hasattr(m, "running_mean")]))
    assert not any(p.requires_grad for p in frozen.parameters())


def test_describe_records_every_gap_and_the_ablation_switches(tiny_pair, tmp_path) -> None:
    method = _build(idse_epochs=1, cdsm_epochs=0)
    method.fit(tiny_pair, tmp_path)
    info = method.describe()
    json.dumps(info)
    assert {"ince_negatives", "elbow", "merge", "sel_weights", "adversarial", "sn2m", "open_set",
            "frozen_batchnorm", "test_distance"} <= set(info["gaps"])
    assert info["switches"] == {"merge_prototypes": True, "use_sel": True, "use_spr": True,
                                "matching": "sn2m"}
    assert info["flags"] == {}
    ablation = build(METHODS, {**TINY, "type": "uem_wo_pm"}, "m", device="cpu")
    assert ablation.describe()["switches"]["merge_prototypes"] is False
    assert build(METHODS, {**TINY, "type": "uem_wo_spda"}, "m").describe()["switches"]["use_spr"] is False


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="'knn'.*sn2m, nearest_neighbour"):
        _build(matching="knn")
    with pytest.raises(ConfigError, match="'ramp'.*constant, dann"):
        _build(grl_schedule="ramp")
    with pytest.raises(ConfigError, match="'median'.*global, local"):
        _build(open_set_merge_threshold="median")
    assert _build(merge_threshold="local").options["open_set_merge_threshold"] == "local"
    assert "NOT the paper" in _build(merge_threshold="local").describe()["gaps"]["merge"]
    with pytest.raises(ConfigError, match="uem_wo_sn2m.matching: unknown key"):
        build(METHODS, {**TINY, "type": "uem_wo_sn2m", "matching": "sn2m"}, "uem_wo_sn2m")


def test_centered_retrieval_space_subtracts_each_domains_mean_and_renormalises(tiny_pair) -> None:
    raw = _build().embed(tiny_pair.query)
    centered = _build(retrieval_space="centered").embed(tiny_pair.query)
    expected = raw - raw.mean(axis=0)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(centered, expected, atol=1e-5)
    assert centered.dtype == np.float32
    with pytest.raises(ConfigError, match="'shifted'.*raw, centered"):
        _build(retrieval_space="shifted")
