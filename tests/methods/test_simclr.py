"""simclr: NT-Xent over one batch of both domains, one step lowers it, resume, config checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from u2cdr.losses.nt_xent import NTXent
from u2cdr.methods._trainer import EpochCheckpoint, TrainingInterrupted
from u2cdr.registry import ConfigError
from test_ucdir import build_tiny, first_batch

TINY = dict(type="simclr", backbone=dict(type="small_cnn", width=8), epochs=2, batch_size=16,
            lr=0.05)


def _build(**overrides):
    return build_tiny(TINY, **overrides)


def test_negatives_come_from_both_domains(tiny_pair) -> None:
    """The loss is NT-Xent over the 2·2B views of A and B together, not a per-domain mean."""
    method = _build()
    x_a, _, x_b, _ = first_batch(tiny_pair)
    method.encoder.eval()  # BatchNorm off the batch, so per-domain passes give the same features
    with torch.no_grad():
        terms = method.loss_terms(x_a, x_b)
        first_a, second_a = method.encoder(x_a[:, 0]), method.encoder(x_a[:, 1])
        first_b, second_b = method.encoder(x_b[:, 0]), method.encoder(x_b[:, 1])
    nt_xent = NTXent(0.5)
    joint = nt_xent(torch.cat([first_a, first_b]), torch.cat([second_a, second_b]))
    per_domain = (nt_xent(first_a, second_a) + nt_xent(first_b, second_b)) / 2
    assert set(terms) == {"L_NTXent"}
    assert terms["L_NTXent"].item() == pytest.approx(joint.item(), rel=1e-5)
    assert abs(joint.item() - per_domain.item()) > 0.1  # more negatives: a different loss


def test_one_step_lowers_the_loss_and_changes_features(tiny_pair) -> None:
    method = _build()
    features_before = method.embed(tiny_pair.query)
    x_a, _, x_b, _ = first_batch(tiny_pair)
    optimizer = torch.optim.SGD(method.encoder.parameters(), lr=0.05, momentum=0.9)
    before = method.loss_terms(x_a, x_b)["L_NTXent"]
    before.backward()
    optimizer.step()
    after = method.loss_terms(x_a, x_b)["L_NTXent"]
    assert after.item() < before.item()
    assert not np.allclose(method.embed(tiny_pair.query), features_before)


def test_interrupted_fit_resumes_and_matches_a_straight_run(tiny_pair, tmp_path) -> None:
    interrupted = _build()
    interrupted.stop_after_epoch = 1
    with pytest.raises(TrainingInterrupted, match="after epoch 1/2"):
        interrupted.fit(tiny_pair, tmp_path / "cell")
    assert EpochCheckpoint(tmp_path / "cell", "simclr").load()["epoch"] == 1

    resumed = _build()
    resumed.fit(tiny_pair, tmp_path / "cell")
    straight = _build()
    straight.fit(tiny_pair, tmp_path / "straight")
    assert [row["L_NTXent"] for row in resumed.history] == \
        [row["L_NTXent"] for row in straight.history]
    for (key, value), other in zip(resumed.encoder.state_dict().items(),
                                   straight.encoder.state_dict().values()):
        assert torch.equal(value, other), key


def test_describe_states_the_union_training_and_the_embedding(tiny_pair) -> None:
    method = _build(embedding="head")
    info = method.describe()
    assert info["adaptation"].startswith("none: self-supervised on the union of both domains")
    assert info["embedding"] == "head" and info["feature_dim"] == 128
    assert method.embed(tiny_pair.gallery).shape == (len(tiny_pair.gallery), 128)
    assert method.family == "self-supervised"


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="'pooled'.*head, backbone"):
        _build(embedding="pooled")
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        _build(temperature=0.0)
    with pytest.raises(ConfigError, match="temprature.*Did you mean 'temperature'"):
        _build(temprature=0.1)
