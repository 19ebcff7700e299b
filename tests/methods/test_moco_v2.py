"""moco_v2: one queue takes the keys of both domains, the key encoder's EMA, one step lowers the
loss, resume, config checks."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from u2cdr.methods._trainer import EpochCheckpoint, TrainingInterrupted
from u2cdr.methods.moco_v2 import union_ids
from u2cdr.registry import ConfigError
from test_ucdir import build_tiny, first_batch

TINY = dict(type="moco_v2", backbone=dict(type="small_cnn", width=8), epochs=2, batch_size=16,
            lr=0.05, key_momentum=0.9, queue_size=48)


def _build(**overrides):
    return build_tiny(TINY, **overrides)


def test_union_rows_put_b_after_a() -> None:
    rows = union_ids(torch.tensor([0, 39]), torch.tensor([0, 5]), size_a=40)
    assert rows.tolist() == [0, 39, 40, 45]


def test_the_one_queue_takes_the_keys_of_both_domains(tiny_pair, tmp_path) -> None:
    """One epoch is 3 steps of 16 + 16 keys (A first, then B) into 48 slots: step 2 fills slots
    32-47 with A and wraps B into 0-15; step 3 writes A into 16-31 and B over 32-47."""
    method = _build(epochs=1)
    initial = method.queue.entries.clone()
    method.fit(tiny_pair, tmp_path)
    owners = method.queue.owners
    size_a = len(tiny_pair.query)
    assert int(method.queue.pointer) == (3 * 32) % 48
    assert (owners[:16] >= size_a).all() and (owners[32:] >= size_a).all()   # rows of B
    assert ((owners[16:32] >= 0) & (owners[16:32] < size_a)).all()            # rows of A
    assert int(owners.max()) < size_a + len(tiny_pair.gallery)
    assert not torch.equal(method.queue.entries, initial)
    assert torch.allclose(method.queue.entries.norm(dim=1), torch.ones(48), atol=1e-5)


def test_keys_enter_the_queue_after_the_loss_and_the_key_encoder_moves_by_ema(tiny_pair) -> None:
    method = _build()
    x_a, idx_a, x_b, idx_b = first_batch(tiny_pair)
    queue_before = method.queue.entries.clone()
    query_before = [p.detach().clone() for p in method.encoder.parameters()]
    key_before = [p.detach().clone() for p in method.key_encoder.parameters()]
    terms, keys, rows = method.loss_terms(0, x_a, idx_a, x_b, idx_b, len(tiny_pair.query))
    assert set(terms) == {"L_instance"}
    assert torch.equal(method.queue.entries, queue_before)
    assert keys.shape == (32, 128) and rows.tolist() == union_ids(idx_a, idx_b, 40).tolist()
    for key_after, key, query in zip(method.key_encoder.parameters(), key_before, query_before):
        assert torch.allclose(key_after, 0.9 * key + 0.1 * query, atol=1e-6)


def test_own_older_keys_are_masked_only_when_asked(tiny_pair) -> None:
    """A queue holding the batch's own keys (one each): unmasked, each row's loss is
    log(exp(masked loss) + 1) (its own key adds exp(q·k/τ) once more to the denominator), so by
    convexity the mean is at least log(exp(mean masked) + 1); with unknown owners nothing is
    masked."""
    x_a, idx_a, x_b, idx_b = first_batch(tiny_pair)
    losses = {}
    for mask, forget_owners in ((True, False), (False, False), (True, True)):
        method = _build(mask_own_keys=mask, queue_size=32)
        method.encoder.eval()  # no BatchNorm update, so both calls compute the same keys
        method.key_encoder.eval()
        with torch.no_grad():
            _, keys, rows = method.loss_terms(0, x_a, idx_a, x_b, idx_b, 40)
            method.queue.enqueue_owned(keys, rows)
            if forget_owners:
                method.queue.owners.fill_(-1)
            terms, _, _ = method.loss_terms(0, x_a, idx_a, x_b, idx_b, 40)
        losses[mask, forget_owners] = terms["L_instance"].item()
    assert losses[False, False] >= math.log(math.exp(losses[True, False]) + 1) - 1e-5
    assert losses[True, True] == pytest.approx(losses[False, False], rel=1e-6)


def test_one_step_lowers_the_loss_and_changes_features(tiny_pair) -> None:
    method = _build()
    features_before = method.embed(tiny_pair.query)
    x_a, idx_a, x_b, idx_b = first_batch(tiny_pair)
    optimizer = torch.optim.SGD(method.encoder.parameters(), lr=0.05, momentum=0.9)
    key_state = {k: v.clone() for k, v in method.key_encoder.state_dict().items()}

    def loss_of_batch() -> torch.Tensor:
        method.key_encoder.load_state_dict(key_state)  # the same keys both times
        terms, _, _ = method.loss_terms(0, x_a, idx_a, x_b, idx_b, 40)
        return terms["L_instance"]

    before = loss_of_batch()
    before.backward()
    optimizer.step()
    assert loss_of_batch().item() < before.item()
    assert not np.allclose(method.embed(tiny_pair.query), features_before)


def test_interrupted_fit_resumes_and_matches_a_straight_run(tiny_pair, tmp_path) -> None:
    interrupted = _build()
    interrupted.stop_after_epoch = 1
    with pytest.raises(TrainingInterrupted, match="after epoch 1/2"):
        interrupted.fit(tiny_pair, tmp_path / "cell")
    saved = EpochCheckpoint(tmp_path / "cell", "moco_v2").load()
    assert saved["state"]["queue"]["owners"].shape == (48,)

    resumed = _build()
    resumed.fit(tiny_pair, tmp_path / "cell")
    straight = _build()
    straight.fit(tiny_pair, tmp_path / "straight")
    assert [row["loss"] for row in resumed.history] == [row["loss"] for row in straight.history]
    assert torch.equal(resumed.queue.entries, straight.queue.entries)
    for (key, value), other in zip(resumed.key_encoder.state_dict().items(),
                                   straight.key_encoder.state_dict().values()):
        assert torch.equal(value, other), key


def test_describe_and_bad_options(tiny_pair) -> None:
    info = _build(key_bn_splits=2).describe()
    assert info["adaptation"].startswith("none: self-supervised on the union of both domains")
    assert info["gap_decisions"]["shuffle_bn"].startswith("key batch in 2 shuffled chunk(s)")
    assert "masked" in info["gap_decisions"]["own_keys"]
    with pytest.raises(ConfigError, match="key_momentum must lie in"):
        _build(key_momentum=1.0)
    with pytest.raises(ConfigError, match="key_bn_splits must lie in 1..2\\*batch_size"):
        _build(key_bn_splits=33)
    with pytest.raises(ConfigError, match="'pooled'.*head, backbone"):
        _build(embedding="pooled")
