"""The loop CDS, PCS and CoDA share (``u2cdr.methods._bank_method``): one step, resume, wiring."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from u2cdr.methods._trainer import TrainingDiverged, TrainingInterrupted
from u2cdr.registry import METHODS, build

TINY = {
    "cds": dict(type="cds", backbone=dict(type="small_cnn", width=8), batch_size=16, lr=0.05),
    "pcs": dict(type="pcs", backbone=dict(type="small_cnn", width=8), batch_size=16, lr=0.05,
                backbone_lr_scale=1.0, num_clusters=4),
    "coda": dict(type="coda", backbone=dict(type="small_cnn", width=8), batch_size=16, lr=0.05,
                 head_lr=0.05, num_clusters=4),
}


def _build(name: str, **overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY[name], **overrides}, "method", device="cpu")


def _prepared(method, pair):
    """A fresh session as ``fit`` makes it, up to the first step of epoch 1."""
    session = method.start_session(pair)
    method.initialize_session(session)
    method.on_epoch_start(session, 0)
    return session


@pytest.mark.parametrize("name", sorted(TINY))
def test_one_step_lowers_the_loss_and_moves_the_features(name, tiny_pair) -> None:
    method = _build(name)
    session = _prepared(method, tiny_pair)
    batch = next(tiny_pair.paired_batches(16, torch.Generator().manual_seed(0)))
    features_before = method.embed(tiny_pair.query)

    def loss_on_batch() -> float:
        with torch.no_grad():
            return method.weighted_loss(method.loss_terms(session, *batch)[0]).item()

    before = loss_on_batch()
    logged = method.train_step(session, *batch, epoch=0, step=0)
    assert logged["loss"].item() == pytest.approx(before, rel=1e-5)
    assert loss_on_batch() < before
    assert not np.allclose(features_before, method.embed(tiny_pair.query), atol=1e-4)


@pytest.mark.parametrize("name", sorted(TINY))
def test_interrupted_fit_resumes_and_matches_a_straight_run(name, tiny_pair, tmp_path) -> None:
    """Extra state (PCS's cluster counts, CoDA's classifiers) travels with the checkpoint."""
    interrupted = _build(name, epochs=2)
    interrupted.stop_after_epoch = 1
    with pytest.raises(TrainingInterrupted):
        interrupted.fit(tiny_pair, tmp_path / "cell")
    resumed = _build(name, epochs=2)
    resumed.fit(tiny_pair, tmp_path / "cell")
    straight = _build(name, epochs=2)
    straight.fit(tiny_pair, tmp_path / "straight")
    assert resumed.history == straight.history
    assert np.array_equal(resumed.embed(tiny_pair.query), straight.embed(tiny_pair.query))


def test_cds_without_its_cross_domain_term_is_instdisc(tiny_pair, tmp_path) -> None:
    """CDS = InstDisc + λ·cross-domain entropy: at λ = 0 both train identically."""
    shared = dict(backbone=dict(type="small_cnn", width=8), head="mlp", low_dim=128, epochs=1,
                  batch_size=16, lr=0.05, temperature=0.1, bank_momentum=0.5)
    torch.manual_seed(2024)
    instdisc = build(METHODS, dict(type="instdisc", **shared), "method", device="cpu")
    instdisc.fit(tiny_pair, tmp_path / "instdisc")
    cds = _build("cds", **shared, cross_domain_weight=0.0)
    cds.fit(tiny_pair, tmp_path / "cds")
    for term in ("L_INCE_A", "L_INCE_B"):
        assert cds.history[0][term] == instdisc.history[0][term]
    assert np.array_equal(cds.embed(tiny_pair.gallery), instdisc.embed(tiny_pair.gallery))


@pytest.mark.parametrize("name", sorted(TINY))
def test_logged_loss_is_the_weighted_sum_of_the_terms(name, tiny_pair) -> None:
    method = _build(name)
    session = _prepared(method, tiny_pair)
    batch = next(tiny_pair.paired_batches(16, torch.Generator().manual_seed(1)))
    logged = method.train_step(session, *batch, epoch=0, step=0)
    weights = method.describe()["loss_weights"]
    terms = {key: value.item() for key, value in logged.items() if key != "loss"}
    assert set(terms) == set(weights)
    assert logged["loss"].item() == pytest.approx(sum(weights[k] * v for k, v in terms.items()),
                                                  rel=1e-5)


@pytest.mark.parametrize("name, first_nan_term", [("cds", "L_INCE_B"), ("pcs", "L_INCE_B"),
                                                  ("coda", "L_ISS_B")])
def test_a_nan_loss_names_its_term(name, first_nan_term, tiny_pair, tmp_path) -> None:
    def nan_view(image):
        return torch.full((1, 28, 28), float("nan"))

    poisoned = replace(tiny_pair, gallery=replace(tiny_pair.gallery, train_transform=nan_view))
    with pytest.raises(TrainingDiverged, match=rf"'{first_nan_term}' is nan at epoch 1, step 1"):
        _build(name, epochs=1).fit(poisoned, tmp_path)
