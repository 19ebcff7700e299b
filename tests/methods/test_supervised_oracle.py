"""supervised_oracle: it reads labels (and says so), SupCon wiring, label-informed private queries, resume."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from u2cdr.methods._trainer import EpochCheckpoint, TrainingInterrupted
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="supervised_oracle", backbone=dict(type="small_cnn", width=8), epochs=2,
            batch_size=16, lr=0.05)


def _build(**overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def test_declares_and_really_uses_labels(tiny_pair, tmp_path) -> None:
    method = _build(epochs=1)
    assert method.uses_labels and method.family == "oracle"
    info = method.describe()
    assert info["adaptation"].startswith("not label-free")
    # Training on shuffled labels gives another model than training on the true ones (the
    # query, UCI, holds ten classes; the fixture's 40 MNIST images are all zeros).
    shuffled = np.random.default_rng(0).permutation(tiny_pair.query.labels)
    lied_to = replace(tiny_pair, query=replace(tiny_pair.query, labels=shuffled))
    method.fit(tiny_pair, tmp_path / "true")
    other = _build(epochs=1)
    other.fit(lied_to, tmp_path / "shuffled")
    assert method.history[0]["L_SupCon"] != other.history[0]["L_SupCon"]


def test_cross_domain_positives_pair_same_class_images_of_the_two_domains() -> None:
    joint, separate = _build(), _build(cross_domain_positives=False)
    z_a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y_a, y_b = torch.tensor([0, 1]), torch.tensor([0, 1])
    # Jointly each image has its other-domain twin as positive; per domain no image has one.
    terms = joint.loss_terms(z_a, y_a, z_b, y_b)
    assert set(terms) == {"L_SupCon"} and terms["L_SupCon"].item() > 0
    per_domain = separate.loss_terms(z_a, y_a, z_b, y_b)
    assert set(per_domain) == {"L_SupCon_A", "L_SupCon_B"}
    assert per_domain["L_SupCon_A"].item() == per_domain["L_SupCon_B"].item() == 0.0


def test_private_queries_are_those_nearest_a_class_the_gallery_lacks() -> None:
    method = _build()
    method.query_classes = np.array([0, 1, 2])
    method.query_class_means = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=np.float32)
    method.gallery_classes = np.array([0, 2])
    queries = np.array([[1.0, 0.0], [9.0, 1.0], [0.0, 8.0], [6.0, 0.0]], dtype=np.float32)
    assert method.detect_private(queries, np.zeros((1, 2), np.float32)).tolist() == [
        False, True, False, True]
    assert _build(private_detection="generic").detect_private(queries, queries) is None


def test_fit_remembers_query_class_means_of_the_final_features(tiny_pair, tmp_path) -> None:
    method = _build(epochs=1)
    method.fit(tiny_pair, tmp_path)
    features = method.embed(tiny_pair.query)
    labels = np.asarray(tiny_pair.query.labels)
    assert method.query_classes.tolist() == sorted(set(labels.tolist()))
    first = method.query_classes[0]
    assert np.allclose(method.query_class_means[0], features[labels == first].mean(axis=0), atol=1e-6)
    assert method.gallery_classes.tolist() == sorted(set(tiny_pair.gallery.labels.tolist()))


def test_interrupted_fit_resumes_and_matches_a_straight_run(tiny_pair, tmp_path) -> None:
    interrupted = _build()
    interrupted.stop_after_epoch = 1
    with pytest.raises(TrainingInterrupted, match="after epoch 1/2"):
        interrupted.fit(tiny_pair, tmp_path / "cell")
    assert EpochCheckpoint(tmp_path / "cell", "supervised_oracle").load()["epoch"] == 1
    resumed = _build()
    resumed.fit(tiny_pair, tmp_path / "cell")
    straight = _build()
    straight.fit(tiny_pair, tmp_path / "straight")
    assert [row["loss"] for row in resumed.history] == [row["loss"] for row in straight.history]
    for (key, value), other in zip(resumed.encoder.state_dict().items(),
                                   straight.encoder.state_dict().values()):
        assert torch.equal(value, other), key
    assert np.array_equal(resumed.query_class_means, straight.query_class_means)


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="'oracle'.*class_means, generic"):
        _build(private_detection="oracle")
    with pytest.raises(ConfigError, match="'pooled'.*head, backbone"):
        _build(embedding="pooled")
