"""cdan: cluster predictions g, the conditioned discriminator input, K handling, resume."""
from __future__ import annotations

import pytest
import torch

from u2cdr.losses.conditional_adversarial import conditional_adversarial_loss, entropy_weights
from u2cdr.methods._trainer import EpochCheckpoint, TrainingInterrupted
from u2cdr.models.clustering import kmeans
from u2cdr.models.multilinear_map import MultilinearMap, RandomizedMultilinearMap
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="cdan", backbone=dict(type="small_cnn", width=8), epochs=2, batch_size=16,
            lr=0.05, discriminator_hidden=16, num_clusters=4, kmeans_iterations=5)


def _build(**overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def _prepared(method, pair, tmp_path):
    """A method with K resolved, its map and discriminator built, banks filled, centroids set."""
    method.prepare_discriminator(pair, tmp_path)
    session = method.start_session(pair)
    method.initialize_session(session)
    method.on_epoch_start(session, 0)
    return session


def test_soft_assignments_are_distributions_over_k_shared_centroids_without_gradient(
        tiny_pair, tmp_path) -> None:
    method = _build()
    session = _prepared(method, tiny_pair, tmp_path)
    assert method.centroids.shape == (4, method.encoder.out_dim)
    assert torch.allclose(method.centroids.norm(dim=1), torch.ones(4), atol=1e-5)  # spherical
    z = method.encoder(torch.stack([tiny_pair.query.images()[i][0] for i in range(6)]))
    g = method.soft_assignments(z)
    assert g.shape == (6, 4) and not g.requires_grad
    assert torch.allclose(g.sum(dim=1), torch.ones(6), atol=1e-6)
    expected = torch.softmax(z.detach() @ method.centroids.t() / 0.1, dim=1)
    assert torch.allclose(g, expected)
    # centroids_from='both': spherical K-means of the two banks stacked, seeded by the cell.
    stacked = torch.cat([session.banks["A"].entries, session.banks["B"].entries]).numpy()
    centroids, _, _ = kmeans(stacked, 4, seed=method.seed, niter=5, spherical=True)
    assert torch.allclose(method.centroids, torch.from_numpy(centroids))
    query_only = _build(centroids_from="query")
    query_session = _prepared(query_only, tiny_pair, tmp_path / "query")
    centroids, _, _ = kmeans(query_session.banks["A"].entries.numpy(), 4, seed=query_only.seed,
                             niter=5, spherical=True)
    assert torch.allclose(query_only.centroids, torch.from_numpy(centroids))


def test_discriminator_sees_f_outer_g_and_its_gradient_reaches_only_f(tiny_pair, tmp_path) -> None:
    method = _build()
    _prepared(method, tiny_pair, tmp_path)
    assert isinstance(method.conditioning, MultilinearMap)
    assert method.domain_classifier.layers[0].in_features == 128 * 4
    z_a = torch.randn(3, 128, requires_grad=True)
    z_b = torch.randn(2, 128, requires_grad=True)
    seen = []
    hook = method.domain_classifier.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0]))
    method.adversarial_loss(z_a, z_b, 1.0).backward()
    hook.remove()
    g_a = method.soft_assignments(z_a)
    assert torch.allclose(seen[0][:3].reshape(3, 128, 4), z_a[:, :, None] * g_a[:, None, :], atol=1e-6)
    assert z_a.grad is not None and z_a.grad.abs().sum() > 0


def test_randomized_map_above_the_threshold_and_entropy_weighting(tiny_pair, tmp_path) -> None:
    method = _build(randomize_above=256, random_dim=32, entropy_conditioning=True)
    _prepared(method, tiny_pair, tmp_path)
    assert isinstance(method.conditioning, RandomizedMultilinearMap)  # 128 · 4 > 256
    assert method.domain_classifier.layers[0].in_features == 32
    # One sample on a centroid (confident g), one between all of them (uncertain g).
    z = torch.nn.functional.normalize(torch.stack([method.centroids[0], method.centroids.mean(0),
                                                   method.centroids[1], method.centroids[2]]), dim=1)
    g = method.soft_assignments(z)
    weights = entropy_weights(g)
    assert weights[0] > weights[1]
    expected = conditional_adversarial_loss(method.domain_classifier, method.conditioning(z[:2], g[:2]),
                                            method.conditioning(z[2:], g[2:]), 1.0, weights[:2],
                                            weights[2:])
    assert method.adversarial_loss(z[:2], z[2:], 1.0).item() == pytest.approx(expected.item())
    assert method.describe()["gap_decisions"]["entropy_conditioning"].startswith("CDAN+E")


def test_elbow_and_oracle_counts_are_resolved_and_recorded(tiny_pair, tmp_path) -> None:
    elbow = _build(num_clusters="elbow", elbow_k_max=8)
    k = elbow._resolve_cluster_count(tiny_pair, tmp_path / "elbow")
    assert 2 <= k <= 8
    oracle = _build(num_clusters="oracle")
    assert oracle._resolve_cluster_count(tiny_pair, tmp_path / "oracle") == len(
        set(tiny_pair.query.labels) | set(tiny_pair.gallery.labels))
    assert oracle.describe()["flags"] == {"num_clusters": "oracle"}


def test_interrupted_fit_resumes_with_the_saved_k_and_matches_a_straight_run(tiny_pair,
                                                                            tmp_path) -> None:
    interrupted = _build(num_clusters="elbow", elbow_k_max=6)
    interrupted.stop_after_epoch = 1
    with pytest.raises(TrainingInterrupted, match="after epoch 1/2"):
        interrupted.fit(tiny_pair, tmp_path / "cell")
    saved = EpochCheckpoint(tmp_path / "cell", "cdan").load()
    k = saved["state"]["cluster_count"]["num_clusters"]
    assert k == interrupted.cluster_count.value

    resumed = _build(num_clusters="elbow", elbow_k_max=6)
    resumed.fit(tiny_pair, tmp_path / "cell")
    straight = _build(num_clusters="elbow", elbow_k_max=6)
    straight.fit(tiny_pair, tmp_path / "straight")
    assert resumed.cluster_count.value == straight.cluster_count.value == k
    assert [row["L_DAL"] for row in resumed.history] == [row["L_DAL"] for row in straight.history]
    for module in ("encoder", "domain_classifier"):
        for (key, value), other in zip(getattr(resumed, module).state_dict().items(),
                                       getattr(straight, module).state_dict().values()):
            assert torch.equal(value, other), f"{module}.{key}"
    assert resumed.describe()["num_clusters_used"] == k


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="'gallery'.*both, query"):
        _build(centroids_from="gallery")
    with pytest.raises(ConfigError, match="'maybe'.*auto, always, never"):
        _build(randomized="maybe")
    with pytest.raises(ConfigError, match="'many'.*'oracle', 'elbow'"):
        _build(num_clusters="many")
