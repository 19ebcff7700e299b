"""ucdir: one step lowers the loss, resume, the cluster-count flag, the cluster-wise ramp."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from u2cdr.methods._trainer import EpochCheckpoint, TrainingInterrupted
from u2cdr.methods.ucdir import with_two_views
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="ucdir", backbone=dict(type="small_cnn", width=8), epochs=2, batch_size=16,
            lr=0.05, key_momentum=0.9, num_clusters=3, warmup_epochs=1, cwcon_saturate_epoch=2,
            cwcon_filter_threshold=0.0, kmeans_nredo=1, temperature=0.2)


def build_tiny(config: dict, **overrides):
    """A method from ``config`` with ``overrides``, seeded as the harness seeds a cell."""
    torch.manual_seed(2024)
    return build(METHODS, {**config, **overrides}, "method", device="cpu")


def _build(**overrides):
    return build_tiny(TINY, **overrides)


def first_batch(pair, batch_size: int = 16):
    return next(with_two_views(pair).paired_batches(batch_size, torch.Generator().manual_seed(0)))


def one_step_losses(method, pair, epoch: int) -> tuple[dict, float, float]:
    """Loss terms of a fixed batch, then the loss of the same batch after one optimiser step.

    Both evaluations see the same prototypes and queues (restored / not yet enqueued), so the
    difference is the parameter update alone.
    """
    method._setup(pair)
    method._initialize(pair)
    method._prepare_epoch(epoch, pair)
    optimizer = method._make_optimizer()
    batch = first_batch(pair, method.batch_size)
    saved_state = dict(method.state.tensors)

    def loss_of_batch():
        method.state.tensors = dict(saved_state)
        torch.manual_seed(7)  # the same key-batch shuffle and Fourier draws both times
        terms = method._loss_terms(epoch, *batch)
        return terms, method._total_loss(epoch, terms)

    terms, before = loss_of_batch()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    _, after = loss_of_batch()
    return terms, float(before.detach()), float(after.detach())


def test_one_step_lowers_every_term_sum_and_changes_features(tiny_pair) -> None:
    method = _build(warmup_epochs=0)
    features_before = method.embed(tiny_pair.query)
    terms, before, after = one_step_losses(method, tiny_pair, epoch=1)
    assert set(terms) == {"L_inst_A", "L_inst_B", "L_cwcon_A", "L_cwcon_B", "L_selfentropy",
                          "L_distofdist"}
    assert all(torch.isfinite(value) for value in terms.values())
    assert after < before
    assert not np.allclose(method.embed(tiny_pair.query), features_before)


def test_total_loss_follows_ucdirs_weighting(tiny_pair) -> None:
    method = _build(warmup_epochs=0, cwcon_saturate_epoch=4, self_entropy_weight=2.0,
                    distofdist_weight=3.0, instance_weight=1.5)
    terms = {name: torch.tensor(value) for name, value in
             dict(L_inst_A=1.0, L_inst_B=2.0, L_cwcon_A=4.0, L_cwcon_B=8.0, L_selfentropy=0.5,
                  L_distofdist=0.25).items()}
    # epoch 2 of a 0 → 4 ramp: cluster-wise weight ½.
    expected = (1.5 * 1.0 + 0.5 * 4.0 + 1.5 * 2.0 + 0.5 * 8.0) / 2 + 2.0 * 0.5 + 3.0 * 0.25
    assert float(method._total_loss(2, terms)) == pytest.approx(expected)


def test_cluster_wise_weight_ramp() -> None:
    method = _build(warmup_epochs=2, cwcon_saturate_epoch=6, cwcon_weight_start=0.0,
                    cwcon_weight_saturate=1.0, epochs=10)
    assert [method.cwcon_weight(e) for e in (2, 3, 4, 6, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]


def test_self_entropy_over_other_domain_only(tiny_pair) -> None:
    method = _build(warmup_epochs=0, self_entropy_prototypes="other")
    method._setup(tiny_pair)
    method._initialize(tiny_pair)
    method._prepare_epoch(0, tiny_pair)
    x_a, idx_a, x_b, idx_b = first_batch(tiny_pair)
    method.encoder.eval()  # fixed BatchNorm so the queries can be recomputed
    method.key_encoder.eval()
    terms = method._loss_terms(0, x_a, idx_a, x_b, idx_b)
    with torch.no_grad():
        q_a, q_b = method.encoder(torch.cat([x_a, x_b])[:, 0]).split(len(x_a))
        p_a, p_b = method.clusters["A"][0], method.clusters["B"][0]
        expected = (method.self_entropy(q_a, p_b) + method.self_entropy(q_b, p_a)) / 2
    assert float(terms["L_selfentropy"].detach()) == pytest.approx(float(expected), rel=1e-5)


def test_resume_matches_a_straight_run_and_keeps_the_cluster_count(tiny_pair, tmp_path) -> None:
    interrupted = _build(num_clusters="elbow", elbow_k_max=8)
    interrupted.stop_after_epoch = 1
    with pytest.raises(TrainingInterrupted):
        interrupted.fit(tiny_pair, tmp_path / "cell")
    resumed = _build(num_clusters="elbow", elbow_k_max=8)
    resumed.fit(tiny_pair, tmp_path / "cell")
    straight = _build(num_clusters="elbow", elbow_k_max=8)
    straight.fit(tiny_pair, tmp_path / "straight")
    assert [row["loss"] for row in resumed.history] == [row["loss"] for row in straight.history]
    assert "L_cwcon_A" in straight.history[1] and "L_cwcon_A" not in straight.history[0]
    assert resumed.resolved_clusters() == straight.resolved_clusters()
    assert set(straight.resolved_clusters()) == {"A", "B"}
    assert np.array_equal(resumed.embed(tiny_pair.gallery), straight.embed(tiny_pair.gallery))
    saved = EpochCheckpoint(tmp_path / "straight", "ucdir").load()
    assert saved["state"]["memory_A"]["entries"].shape == (len(tiny_pair.query), 128)


def test_oracle_count_is_the_class_count_and_is_flagged(tiny_pair, tmp_path) -> None:
    method = _build(num_clusters="oracle", epochs=1, warmup_epochs=0)
    method.fit(tiny_pair, tmp_path)
    description = method.describe()
    assert description["flags"] == {"num_clusters": "oracle"}
    # The 40 UCI digits hold all ten classes; the 40 MNIST digits are all zeros, and one class
    # still gets the two clusters K-means needs at least.
    assert description["num_clusters_resolved"] == {"A": 10, "B": 2}
    assert method.distance == "cosine"


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="num_clusters='auto'.*'oracle', 'elbow'"):
        _build(num_clusters="auto")
    with pytest.raises(ConfigError, match="'mine'.*both, other"):
        _build(self_entropy_prototypes="mine")
    with pytest.raises(ConfigError, match="'queue'.*memory, batch"):
        _build(instance_negatives="queue")
    with pytest.raises(ConfigError, match="key_bn_splits"):
        _build(key_bn_splits=32)
