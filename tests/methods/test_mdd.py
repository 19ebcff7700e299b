"""mdd: pseudo-labelled source classifier, f' behind gradient reversal, K handling, resume."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from u2cdr.losses.margin_disparity import margin_disparity_loss
from u2cdr.methods._trainer import EpochCheckpoint, TrainingInterrupted
from u2cdr.methods.mdd import LabelAnchor
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="mdd", backbone=dict(type="small_cnn", width=8), epochs=2, batch_size=16,
            lr=0.05, classifier_hidden=16, num_clusters=4, kmeans_iterations=5)


def _build(**overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def _batch(pair, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.stack([pair.query.images(train=False)[i][0] for i in range(size)]),
            torch.stack([pair.gallery.images(train=False)[i][0] for i in range(size)]))


def _prepared(method, pair, tmp_path):
    """K resolved, f and f' built, banks filled, centroids and pseudo-labels set."""
    method.prepare_discriminator(pair, tmp_path)
    session = method.start_session(pair)
    method.initialize_session(session)
    method.on_epoch_start(session, 0)
    return session


def test_pseudo_labels_are_each_query_entrys_nearest_centroid(tiny_pair, tmp_path) -> None:
    method = _build()
    session = _prepared(method, tiny_pair, tmp_path)
    bank = session.banks["A"].entries
    assert method.centroids.shape == (4, bank.shape[1])
    assert method.source_labels.shape == (len(tiny_pair.query),)
    expected = torch.cdist(bank, method.centroids).argmin(1)  # unit vectors: max cos = min dist
    assert torch.equal(method.source_labels, expected)
    assert method.classifier[-1].out_features == method.adversary[-1].out_features == 4


def test_a_reclustering_keeps_each_pseudo_class_number() -> None:
    # K-means numbers clusters arbitrarily; the anchor renumbers a new run to the last one.
    anchor = LabelAnchor()
    first = F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    assert torch.equal(anchor.align(first), first)
    shuffled = first[[2, 0, 3, 1]] + 0.01
    aligned = anchor.align(shuffled)
    assert torch.allclose(aligned, first + 0.01)
    restored = LabelAnchor()
    restored.load_state_dict(anchor.state_dict())
    assert torch.equal(restored.centroids, anchor.centroids)


def test_adversary_descends_on_minus_d_while_the_encoder_gets_the_reversed_gradient(
        tiny_pair, tmp_path) -> None:
    method = _build()
    _prepared(method, tiny_pair, tmp_path)
    x_a, x_b = _batch(tiny_pair)
    h_a, h_b = torch.zeros(8, dtype=torch.long), torch.ones(8, dtype=torch.long)

    def gradients(coefficient: float | None):
        method.encoder.zero_grad()
        method.adversary.zero_grad()
        z_a, z_b = method.encoder(x_a), method.encoder(x_b)
        if coefficient is None:  # the same loss without reversal
            loss = margin_disparity_loss(method.adversary(z_a), method.adversary(z_b), h_a, h_b,
                                         method.margin)
        else:
            loss = method.disparity_loss(z_a, z_b, h_a, h_b, coefficient)
        loss.backward()
        encoder = {n: p.grad.clone() for n, p in method.encoder.named_parameters()
                   if p.grad is not None}
        return encoder, {n: p.grad.clone() for n, p in method.adversary.named_parameters()}

    reversed_encoder, reversed_adversary = gradients(0.1)
    plain_encoder, plain_adversary = gradients(None)
    assert len(plain_encoder) > 4 and any(g.abs().max() > 0 for g in plain_encoder.values())
    for name, gradient in plain_encoder.items():
        assert torch.allclose(reversed_encoder[name], -0.1 * gradient, atol=1e-7), name
    for name, gradient in plain_adversary.items():
        assert torch.allclose(reversed_adversary[name], gradient, atol=1e-7), name


def test_a_step_trains_f_on_pseudo_labels_and_logs_both_terms(tiny_pair, tmp_path) -> None:
    method = _build()
    session = _prepared(method, tiny_pair, tmp_path)
    idx_a = torch.arange(8)
    x_a, x_b = _batch(tiny_pair)
    method.encoder.eval()  # BatchNorm in eval mode so the step's z_A equals this one
    with torch.no_grad():
        z_a = method.encoder(x_a)
        expected = F.cross_entropy(method.classifier(z_a), method.source_labels[idx_a])
    before = [p.detach().clone() for p in method.classifier.parameters()]
    logged = method.train_step(session, x_a, idx_a, x_b, torch.arange(8), epoch=0, step=0)
    assert set(logged) == {"loss", "L_INCE_A", "L_INCE_B", "L_CLS", "L_MDD"}
    assert logged["L_CLS"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(before, method.classifier.parameters()))
    assert method.grl_coefficient() == 0.0  # the ramp starts at 0 (progress 0)


def test_interrupted_fit_resumes_and_matches_a_straight_run(tiny_pair, tmp_path) -> None:
    interrupted = _build(num_clusters="elbow", elbow_k_max=6)
    interrupted.stop_after_epoch = 1
    with pytest.raises(TrainingInterrupted, match="after epoch 1/2"):
        interrupted.fit(tiny_pair, tmp_path / "cell")
    k = EpochCheckpoint(tmp_path / "cell", "mdd").load()["state"]["cluster_count"]["num_clusters"]
    resumed = _build(num_clusters="elbow", elbow_k_max=6)
    resumed.fit(tiny_pair, tmp_path / "cell")
    straight = _build(num_clusters="elbow", elbow_k_max=6)
    straight.fit(tiny_pair, tmp_path / "straight")
    assert resumed.cluster_count.value == straight.cluster_count.value == k
    assert [row["L_MDD"] for row in resumed.history] == [row["L_MDD"] for row in straight.history]
    for module in ("encoder", "classifier", "adversary"):
        for (key, value), other in zip(getattr(resumed, module).state_dict().items(),
                                       getattr(straight, module).state_dict().values()):
            assert torch.equal(value, other), f"{module}.{key}"
    info = resumed.describe()
    assert info["num_clusters_used"] == k and info["adaptation"].startswith("label-free")
    assert "disparity" in info["gap_decisions"] and info["flags"] == {"num_clusters": "elbow"}


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="margin > 0"):
        _build(margin=0.0)
    with pytest.raises(ConfigError, match="'gallery'.*both, query"):
        _build(centroids_from="gallery")
    with pytest.raises(ConfigError, match="randomized: unknown key for MDD"):
        _build(randomized="auto")
