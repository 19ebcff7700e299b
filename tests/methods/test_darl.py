"""darl: two views, the domain-aware loss wiring, one training step, queues, config."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from u2cdr.methods._trainer import make_sgd
from u2cdr.methods.darl import TwoViews
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="darl", backbone=dict(type="small_cnn", width=8), epochs=1, batch_size=16, lr=0.05,
            key_momentum=0.9, temperature=0.2)


def _build(**overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def _fixed_two_view_batch(pair):
    """One paired batch whose two views are the same eval image (deterministic)."""
    same = replace(pair, query=replace(pair.query, eval_transform=TwoViews(pair.query.eval_transform)),
                   gallery=replace(pair.gallery, eval_transform=TwoViews(pair.gallery.eval_transform)))
    views_a, _, views_b, _ = next(same.paired_batches(16, torch.Generator().manual_seed(0), train=False))
    return views_a, views_b


def test_two_views_are_independent_draws() -> None:
    torch.manual_seed(0)
    views = TwoViews(lambda image: torch.rand(1, 4, 4))(None)
    assert views.shape == (2, 1, 4, 4)
    assert not torch.equal(views[0], views[1])


def test_queues_are_capped_at_the_domain_size(tiny_pair) -> None:
    method = _build(queue_size=4096)
    method.build_queues(tiny_pair)
    assert {d: len(q.entries) for d, q in method.queues.items()} == {"A": 40, "B": 40}
    method = _build(queue_size=8)
    method.build_queues(tiny_pair)
    assert len(method.queues["A"].entries) == 8


def test_a_certain_predictor_reduces_the_loss_to_moco_on_one_queue(tiny_pair) -> None:
    """With P(A | x) = 1 everywhere, A's anchors see only A's queue (plain MoCo InfoNCE)."""
    method = _build()
    method.build_queues(tiny_pair)
    last = method.predictor.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(50.0)
    views_a, views_b = _fixed_two_view_batch(tiny_pair)
    terms, keys = method.loss_terms(views_a, views_b)
    query = method.encoder(views_a[:, 0])  # same batch statistics as inside loss_terms
    logits = torch.cat([(query * keys["A"]).sum(1, keepdim=True),
                        query @ method.queues["A"].entries.t()], dim=1) / 0.2
    expected = F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long))
    assert terms["L_DARL_A"].item() == pytest.approx(expected.item(), rel=1e-4)
    assert terms["L_domain"].item() == pytest.approx(50.0 / 2, rel=1e-3)  # B's half is wrong by 50


def test_one_step_lowers_the_loss_and_changes_features(tiny_pair) -> None:
    method = _build()
    method.build_queues(tiny_pair)
    views_a, views_b = _fixed_two_view_batch(tiny_pair)
    before_features = method.embed(tiny_pair.query)
    optimizer = make_sgd(list(method.encoder.parameters()) + list(method.predictor.parameters()),
                         lr=0.05)
    first = method.total_loss(method.loss_terms(views_a, views_b)[0])
    optimizer.zero_grad()
    first.backward()
    optimizer.step()
    assert method.total_loss(method.loss_terms(views_a, views_b)[0]).item() < first.item()
    assert not torch.allclose(torch.from_numpy(method.embed(tiny_pair.query)),
                              torch.from_numpy(before_features))


def test_fit_moves_the_key_encoder_and_fills_the_queues(tiny_pair, tmp_path) -> None:
    method = _build()
    method.build_queues(tiny_pair)
    initial_queue = method.queues["B"].entries.clone()
    initial_key = [p.clone() for p in method.key_encoder.parameters()]
    method.fit(tiny_pair, tmp_path)
    assert not torch.equal(method.queues["B"].entries, initial_queue)
    assert any(not torch.equal(a, b) for a, b in zip(initial_key, method.key_encoder.parameters()))
    assert all(not p.requires_grad for p in method.key_encoder.parameters())
    described = method.describe()
    assert described["distance"] == "cosine" and described["queue_sizes"] == {"A": 40, "B": 40}
    assert set(method.history[0]) >= {"L_DARL_A", "L_DARL_B", "L_domain"}


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="'max'.*mixture, expected"):
        _build(aggregation="max")
    with pytest.raises(ConfigError, match="key_momentum must lie in"):
        _build(key_momentum=1.0)
    with pytest.raises(ConfigError, match="'pooled'.*head, backbone"):
        _build(embedding="pooled")
