"""protoot: one step lowers the loss, transport targets and prototype updates, nearest
neighbours, checkpointed prototypes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from u2cdr.methods._trainer import EpochCheckpoint
from u2cdr.methods.protoot import SINKHORN_TAKES_MARGINAL, ProtoOT
from u2cdr.registry import ConfigError
from test_ucdir import build_tiny, one_step_losses

TINY = dict(type="protoot", backbone=dict(type="small_cnn", width=8), epochs=1, batch_size=16,
            lr=1e-3, key_momentum=0.9, num_clusters=3, cross_domain_start_epoch=0,
            cross_domain_weight=0.5, kmeans_niter=10, kmeans_nredo=1)


def _build(**overrides):
    return build_tiny(TINY, **overrides)


def test_one_step_lowers_the_loss_and_changes_features(tiny_pair) -> None:
    method = _build()
    features_before = method.embed(tiny_pair.query)
    terms, before, after = one_step_losses(method, tiny_pair, epoch=0)
    assert set(terms) == {"L_in_A", "L_in_B", "L_cross_A", "L_cross_B"}
    assert after < before
    assert not np.allclose(method.embed(tiny_pair.query), features_before)


def test_cross_domain_term_waits_for_its_epoch(tiny_pair) -> None:
    method = _build(cross_domain_start_epoch=5)
    terms, _, _ = one_step_losses(method, tiny_pair, epoch=4)
    assert set(terms) == {"L_in_A", "L_in_B"}


def test_transport_targets_and_prototype_update() -> None:
    method = _build(epsilon=0.05, sinkhorn_iterations=20, row_normalize_scores=False)
    memory = torch.tensor([[1.0, 0.0], [0.96, 0.28], [0.0, 1.0], [0.28, 0.96]])
    prototypes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    plan, targets = method.transport_targets(memory, prototypes, torch.full((2,), 0.5))
    assert torch.allclose(plan.sum(dim=1), torch.ones(4), atol=1e-5)
    assert targets.tolist() == [0, 0, 1, 1]
    # Plan-weighted means: entries 0, 1 → prototype 0 ≈ normalise((1.96, 0.28)).
    updated = torch.nn.functional.normalize(plan.t() @ memory, dim=1)
    expected = torch.nn.functional.normalize(torch.tensor([1.96, 0.28]), dim=0)
    assert torch.allclose(updated[0], expected, atol=1e-3)


def test_transport_balances_a_crowded_prototype() -> None:
    """Three of four entries prefer prototype 0; balanced transport sends one to prototype 1."""
    method = _build(epsilon=0.05, sinkhorn_iterations=50, row_normalize_scores=False)
    memory = torch.tensor([[1.0, 0.0], [0.9, 0.436], [0.8, 0.6], [0.0, 1.0]])
    _, targets = method.transport_targets(memory, torch.eye(2), torch.full((2,), 0.5))
    assert targets.tolist() == [0, 0, 1, 1]


def test_nearest_neighbour_skips_the_own_slot() -> None:
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
    queries = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    neighbours = ProtoOT.nearest_other_entry(queries, torch.tensor([0, 2]), memory)
    assert torch.equal(neighbours, memory[[2, 1]])


def test_prototypes_are_checkpointed(tiny_pair, tmp_path) -> None:
    method = _build()
    method.fit(tiny_pair, tmp_path)
    state = EpochCheckpoint(tmp_path, "protoot").load()["state"]["state"]
    assert state["prototypes_A"].shape == (3, 128)
    assert torch.allclose(state["prototypes_A"].norm(dim=1), torch.ones(3), atol=1e-5)
    assert int(state["num_clusters_B"]) == 3
    assert method.describe()["flags"] == {"num_clusters": 3}


def test_kmeans_marginal_needs_a_marginal_aware_sinkhorn() -> None:
    if SINKHORN_TAKES_MARGINAL:
        assert _build(prototype_marginal="kmeans").prototype_marginal == "kmeans"
    else:
        with pytest.raises(ConfigError, match="column_marginal"):
            _build(prototype_marginal="kmeans")
    with pytest.raises(ConfigError, match="'ot'.*uniform, kmeans"):
        _build(prototype_marginal="ot")


def test_instance_warm_up_comes_before_the_prototypes(tiny_pair) -> None:
    method = _build(instance_warmup_epochs=1, instance_negatives="batch")
    terms, before, after = one_step_losses(method, tiny_pair, epoch=0)
    assert set(terms) == {"L_inst_A", "L_inst_B"}
    assert "prototypes_A" not in method.state
    method._prepare_epoch(1, tiny_pair)
    assert method.state["prototypes_A"].shape == (3, 128)
    assert method.describe()["gap_decisions"]["instance_negatives"].startswith("batch")
