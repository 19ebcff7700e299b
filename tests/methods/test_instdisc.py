"""instdisc: resumable training, divergence reporting, bank initialisation and config checks."""
from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import torch

from u2cdr.methods._trainer import EpochCheckpoint, TrainingDiverged, TrainingInterrupted
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="instdisc", backbone=dict(type="small_cnn", width=8), epochs=2, batch_size=16,
            lr=0.05)


def _build(**overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def test_interrupted_fit_resumes_at_epoch_two_and_matches_a_straight_run(tiny_pair, tmp_path,
                                                                        caplog) -> None:
    interrupted = _build()
    interrupted.stop_after_epoch = 1
    with pytest.raises(TrainingInterrupted, match="after epoch 1/2"):
        interrupted.fit(tiny_pair, tmp_path / "cell")
    saved = EpochCheckpoint(tmp_path / "cell", "instdisc").load()  # weights_only=True
    assert saved["epoch"] == 1
    bank = saved["state"]["bank_A"]["entries"]
    assert bank.shape == (len(tiny_pair.query), 128)
    assert torch.allclose(bank.norm(dim=1), torch.ones(len(bank)), atol=1e-5)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="u2cdr"):
        resumed = _build()
        resumed.fit(tiny_pair, tmp_path / "cell")
    assert "resumed from" in caplog.text
    assert "instdisc epoch 1/2" not in caplog.text and "instdisc epoch 2/2" in caplog.text
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    assert resumed.history[0] == saved["history"][0]

    straight = _build()
    straight.fit(tiny_pair, tmp_path / "straight")
    assert [row["loss"] for row in resumed.history] == [row["loss"] for row in straight.history]
    for (key, value), other in zip(resumed.encoder.state_dict().items(),
                                   straight.encoder.state_dict().values()):
        assert torch.equal(value, other), key


def test_banks_start_from_the_initial_models_eval_features(tiny_pair, tmp_path) -> None:
    """With β → 1 and lr → 0 the bank after training is still its initialisation (Eq. 5 init)."""
    method = _build(lr=1e-12, epochs=1, bank_momentum=0.999999)
    initial = {"A": method.embed(tiny_pair.query), "B": method.embed(tiny_pair.gallery)}
    method.fit(tiny_pair, tmp_path)
    state = EpochCheckpoint(tmp_path, "instdisc").load()["state"]
    for domain in ("A", "B"):
        assert torch.allclose(state[f"bank_{domain}"]["entries"], torch.from_numpy(initial[domain]),
                              atol=1e-4)


def test_nan_loss_names_the_diverging_term(tiny_pair, tmp_path) -> None:
    def nan_view(image):
        return torch.full((1, 28, 28), float("nan"))

    poisoned = replace(tiny_pair, gallery=replace(tiny_pair.gallery, train_transform=nan_view))
    with pytest.raises(TrainingDiverged, match=r"'L_INCE_B' is nan at epoch 1, step 1"):
        _build().fit(poisoned, tmp_path)


@pytest.mark.parametrize("negatives", ["batch", "bank"])
def test_both_negative_sets_train(negatives, tiny_pair, tmp_path) -> None:
    method = _build(negatives=negatives, epochs=1)
    method.fit(tiny_pair, tmp_path)
    assert method.describe()["gap_decisions"]["negatives"].startswith(negatives)
    assert method.history[0]["L_INCE_A"] > 0


def test_backbone_embedding_is_the_normalised_pooled_feature(tiny_pair) -> None:
    method = _build(embedding="backbone")
    features = method.embed(tiny_pair.query)
    assert features.shape == (len(tiny_pair.query), 32)
    assert method.describe()["embedding"] == "backbone"


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="'queue'.*bank, batch"):
        _build(negatives="queue")
    with pytest.raises(ConfigError, match="'pooled'.*head, backbone"):
        _build(embedding="pooled")
    with pytest.raises(ConfigError, match="temprature.*Did you mean 'temperature'"):
        _build(temprature=0.1)
