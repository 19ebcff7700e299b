"""pcl: Eq. 12's concentration on toy clusters, its scaling, ProtoNCE with per-cluster φ, joint
clustering of both domains, the warm-up, resume, config checks."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from u2cdr.methods._trainer import EpochCheckpoint, TrainingInterrupted
from u2cdr.methods.pcl import cluster_concentration, scale_concentration
from u2cdr.registry import ConfigError
from test_ucdir import build_tiny

TINY = dict(type="pcl", backbone=dict(type="small_cnn", width=8), epochs=2, batch_size=16,
            lr=0.05, key_momentum=0.9, queue_size=48, num_clusters=[3, 5], warmup_epochs=1,
            kmeans_nredo=1)


def _build(**overrides):
    return build_tiny(TINY, **overrides)


def test_concentration_of_toy_clusters_by_hand() -> None:
    features = np.array([[3, 0], [-3, 0], [0, 4], [0, -4],    # cluster 0 around (0, 0)
                         [10, 10],                            # cluster 1: a single point
                         [5, 0], [7, 0]], dtype=np.float32)   # cluster 2 around (6, 0)
    centroids = np.array([[0, 0], [10, 10], [6, 0]], dtype=np.float32)
    assignments = np.array([0, 0, 0, 0, 1, 2, 2])
    phi = cluster_concentration(features, centroids, assignments, alpha=10.0)
    spread_0 = (3 + 3 + 4 + 4) / (4 * math.log(4 + 10))
    spread_2 = (1 + 1) / (2 * math.log(2 + 10))
    assert phi == pytest.approx([spread_0, spread_0, spread_2])  # single point: the largest φ


def test_concentration_of_single_points_only_is_zero() -> None:
    points = np.eye(3, dtype=np.float32)
    assert cluster_concentration(points, points, np.arange(3)).tolist() == [0.0, 0.0, 0.0]
    assert scale_concentration(np.zeros(3), 0.2).tolist() == [0.2, 0.2, 0.2]


def test_concentration_is_clipped_then_scaled_to_mean_tau() -> None:
    raw = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    # 10th / 90th percentiles (linear): 1 + 0.4·1 = 1.4 and 4 + 0.6·96 = 61.6; mean after 14.4.
    clipped = scale_concentration(raw, 0.2, (10.0, 90.0))
    assert clipped == pytest.approx(0.2 * np.array([1.4, 2, 3, 4, 61.6]) / 14.4)
    assert scale_concentration(raw, 0.2, None) == pytest.approx(0.2 * raw / 22.0)
    assert clipped.mean() == pytest.approx(0.2)


def test_proto_nce_divides_each_prototype_by_its_concentration(tiny_pair) -> None:
    """q = (1, 0); prototypes (1, 0) with φ ½ and (0, 1) with φ ¼: logits (2, 0). Granularity 1
    puts the image in cluster 0, granularity 2 in cluster 1; L_proto is their mean."""
    method = _build()
    scaled = torch.tensor([[1.0, 0.0], [0.0, 1.0]]) / torch.tensor([[0.5], [0.25]])
    method.prototypes = [(scaled, torch.tensor([0, 1, 1])), (scaled, torch.tensor([1, 0, 0]))]
    terms = method.extra_terms(1, torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    own_cluster = -math.log(math.exp(2) / (math.exp(2) + 1))
    other_cluster = -math.log(1 / (math.exp(2) + 1))
    assert terms["L_proto"].item() == pytest.approx((own_cluster + other_cluster) / 2, rel=1e-6)
    total = method.total_loss(1, {"L_instance": torch.tensor(1.0), **terms})
    assert total.item() == pytest.approx(1.0 + (own_cluster + other_cluster) / 2, rel=1e-6)


def test_e_step_clusters_both_domains_together(tiny_pair) -> None:
    method = _build(num_clusters=[3, 5, 100], temperature=0.3)
    method.prepare_epoch(0, tiny_pair)
    assert method.prototypes == []                      # warm-up: no E-step
    method.prepare_epoch(1, tiny_pair)
    union = len(tiny_pair.query) + len(tiny_pair.gallery)
    assert method.resolved_counts == [3, 5, union]      # 100 cut to the 80 images
    for scaled, assignments in method.prototypes:
        assert assignments.shape == (union,)
        # rows are unit prototypes divided by φ, and the φ of a granularity average to τ
        assert (1 / scaled.norm(dim=1)).mean().item() == pytest.approx(0.3, rel=1e-5)
    assert method.describe()["num_clusters_resolved"] == [3, 5, union]


def test_images_per_cluster_sets_counts_from_both_domains() -> None:
    method = _build(images_per_cluster=[10, 40, 1000])
    assert method.cluster_counts(80) == [8, 2, 2]
    assert "images_per_cluster [10.0, 40.0, 1000.0]" in \
        method.describe()["gap_decisions"]["clustering"]


def test_warm_up_then_proto_nce_and_resume_matches_a_straight_run(tiny_pair, tmp_path) -> None:
    interrupted = _build()
    interrupted.stop_after_epoch = 1
    with pytest.raises(TrainingInterrupted, match="after epoch 1/2"):
        interrupted.fit(tiny_pair, tmp_path / "cell")
    assert EpochCheckpoint(tmp_path / "cell", "pcl").load()["epoch"] == 1

    resumed = _build()
    resumed.fit(tiny_pair, tmp_path / "cell")
    straight = _build()
    straight.fit(tiny_pair, tmp_path / "straight")
    assert "L_proto" not in straight.history[0] and straight.history[1]["L_proto"] > 0
    assert resumed.history == straight.history
    for (key, value), other in zip(resumed.encoder.state_dict().items(),
                                   straight.encoder.state_dict().values()):
        assert torch.equal(value, other), key


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="num_clusters must be a non-empty list of ints >= 2"):
        _build(num_clusters=[1, 5])
    with pytest.raises(ConfigError, match="images_per_cluster must be"):
        _build(images_per_cluster=[0.5])
    with pytest.raises(ConfigError, match="concentration_clip must be None or two percentiles"):
        _build(concentration_clip=[90, 10])
    with pytest.raises(ConfigError, match="warmup_epochs >= 0"):
        _build(warmup_epochs=-1)
