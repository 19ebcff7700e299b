"""dgdir: one step lowers the loss, keys queue after the step with their owners, joint
clustering of both domains."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from u2cdr.methods.dgdir import OwnedFeatureQueue
from u2cdr.registry import ConfigError
from test_ucdir import build_tiny, first_batch, one_step_losses

TINY = dict(type="dgdir", backbone=dict(type="small_cnn", width=8), epochs=1, batch_size=16,
            lr=0.05, key_momentum=0.9, queue_size=64, num_clusters=3, warmup_epochs=0,
            cluster_weight=0.5, kmeans_nredo=1)


def _build(**overrides):
    return build_tiny(TINY, **overrides)


def test_one_step_lowers_the_loss_and_changes_features(tiny_pair) -> None:
    method = _build()
    features_before = method.embed(tiny_pair.query)
    terms, before, after = one_step_losses(method, tiny_pair, epoch=0)
    assert set(terms) == {"L_intra", "L_cross", "L_cluster"}
    assert after < before
    assert not np.allclose(method.embed(tiny_pair.query), features_before)
    assert features_before.shape[1] == 32  # pooled backbone of the width-8 CNN


def test_keys_enter_the_queues_after_the_step_with_their_owners(tiny_pair) -> None:
    method = _build(warmup_epochs=1)
    method._setup(tiny_pair)
    method._prepare_epoch(0, tiny_pair)
    x_a, idx_a, x_b, idx_b = first_batch(tiny_pair)
    queue = method.queues["phase_B"]
    initial = queue.entries.clone()
    terms = method._loss_terms(0, x_a, idx_a, x_b, idx_b)
    assert set(terms) == {"L_intra", "L_cross"}
    assert torch.equal(queue.entries, initial)          # untouched until the step is done
    method._after_step()
    assert int(queue.pointer) == 16
    assert torch.equal(queue.owners[:16], idx_b)
    assert (queue.owners[16:] == -1).all()
    assert not torch.equal(queue.entries[:16], initial[:16])


def test_owned_queue_wraps_around() -> None:
    queue = OwnedFeatureQueue(dim=2, size=3)
    queue.enqueue_owned(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([4, 5]))
    queue.enqueue_owned(torch.tensor([[-1.0, 0.0], [0.0, -1.0]]), torch.tensor([6, 7]))
    assert queue.owners.tolist() == [7, 5, 6]
    assert torch.equal(queue.entries[0], torch.tensor([0.0, -1.0]))


def test_clusters_are_shared_by_both_domains(tiny_pair) -> None:
    method = _build()
    method._setup(tiny_pair)
    method._prepare_epoch(0, tiny_pair)
    assert method.clusters["centroids"].shape == (3, 32)
    assert len(method.clusters["A"]) == len(tiny_pair.query)
    assert len(method.clusters["B"]) == len(tiny_pair.gallery)
    assert method.resolved_clusters() == {"joint": 3}


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="queue_size"):
        _build(queue_size=0)
    with pytest.raises(ConfigError, match="amplitude_alpha"):
        _build(amplitude_alpha=3.0)


@pytest.mark.parametrize("choice", ["query_view", "key_view"])
def test_cross_view_negatives_come_from_the_chosen_queue(choice, tiny_pair) -> None:
    method = _build(cross_negatives=choice, warmup_epochs=1, key_momentum=0.0)
    method._setup(tiny_pair)
    for domain in ("A", "B"):  # the two kinds of queue hold opposite vectors
        method.queues[f"mixed_{domain}"].entries.copy_(-method.queues[f"phase_{domain}"].entries)
    method.encoder.eval()      # fixed BatchNorm, so the features can be recomputed below
    method.key_encoder.eval()
    x_a, idx_a, x_b, idx_b = first_batch(tiny_pair)
    torch.manual_seed(5)
    terms = method._loss_terms(0, x_a, idx_a, x_b, idx_b)
    torch.manual_seed(5)       # the same Fourier draws as inside _loss_terms
    views = torch.cat([x_a, x_b])
    mixed_q, phase_q = method.fourier(views[:, 0])
    mixed_k, phase_k = method.fourier(views[:, 1])
    with torch.no_grad():
        queries = dict(zip(("phase", "mixed"),
                           method.encoder(torch.cat([phase_q, mixed_q])).chunk(2)))
        keys = dict(zip(("phase", "mixed"),
                        method.key_encoder(torch.cat([phase_k, mixed_k])).chunk(2)))
    expected = 0.0
    for domain, rows, index in (("A", slice(0, 16), idx_a), ("B", slice(16, 32), idx_b)):
        for view, other in (("phase", "mixed"), ("mixed", "phase")):
            queue = method.queues[f"{view if choice == 'query_view' else other}_{domain}"]
            expected += float(method.queue_nce(queries[view][rows], keys[other][rows],
                                               queue.entries, queue.owners, index)) / 2
    assert float(terms["L_cross"].detach()) == pytest.approx(expected, rel=1e-4)
