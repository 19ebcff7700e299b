"""The shared training helpers: schedule, divergence check, RNG capture, resumable epochs."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from u2cdr.methods._trainer import (EpochCheckpoint, LossMeter, TrainingDiverged, TrainingInterrupted,
                                    capture_rng_state, check_finite, cosine_lr, make_sgd,
                                    progress_enabled, resolve_device, restore_rng_state, run_epochs)


def test_cosine_schedule_anneals_to_zero() -> None:
    assert cosine_lr(0.1, 0, 100) == pytest.approx(0.1)
    assert cosine_lr(0.1, 50, 100) == pytest.approx(0.05)
    assert cosine_lr(0.1, 25, 100) == pytest.approx(0.05 * (1 + 2 ** -0.5))
    assert cosine_lr(0.1, 100, 100) == pytest.approx(0.0, abs=1e-12)


def test_check_finite_names_the_term_epoch_and_step() -> None:
    check_finite({"L_a": torch.tensor(1.0)}, epoch=1, step=1)
    with pytest.raises(TrainingDiverged, match=r"'L_INCE_B' is nan at epoch 3, step 7"):
        check_finite({"L_INCE_A": torch.tensor(0.5), "L_INCE_B": torch.tensor(float("nan"))}, 3, 7)
    with pytest.raises(TrainingDiverged, match="'L_x' is inf"):
        check_finite({"L_x": torch.tensor(float("inf"))}, 1, 1)


def test_loss_meter_averages_terms() -> None:
    meter = LossMeter()
    meter.add({"a": torch.tensor(1.0), "b": torch.tensor(4.0)})
    meter.add({"a": torch.tensor(3.0), "b": torch.tensor(0.0)})
    assert meter.means() == {"a": 2.0, "b": 2.0}


def test_progress_bar_switch(monkeypatch) -> None:
    monkeypatch.setenv("U2CDR_NO_PROGRESS", "1")
    assert not progress_enabled()


def test_devices_are_checked() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="valid: 'cpu', 'cuda'"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_rng_state_survives_a_weights_only_checkpoint(tmp_path) -> None:
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    torch.save(capture_rng_state(), tmp_path / "rng.pth")
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    restore_rng_state(torch.load(tmp_path / "rng.pth", weights_only=True))
    assert torch.equal(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])
    assert [random.random() for _ in range(3)] == expected[2]


class _ToyRun:
    """A linear model trained by ``run_epochs``; records which epochs actually ran."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = nn.Linear(2, 1)
        self.optimizer = make_sgd(self.model.parameters(), lr=0.1, weight_decay=1e-4)
        self.ran: list[int] = []
        self.initialized = 0

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self.ran.append(epoch)
        loss = (self.model(torch.randn(4, 2)) ** 2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach())}

    def initialize(self) -> None:
        self.initialized += 1

    def run(self, work_dir, epochs: int = 3, stop_after_epoch: int | None = None):
        return run_epochs(stage="toy", epochs=epochs, work_dir=work_dir,
                          stateful={"model": self.model, "optimizer": self.optimizer},
                          train_epoch=self.train_epoch, initialize=self.initialize,
                          stop_after_epoch=stop_after_epoch)


def test_interrupted_run_resumes_at_the_next_epoch_and_matches(tmp_path) -> None:
    first = _ToyRun()
    with pytest.raises(TrainingInterrupted, match="after epoch 1/3"):
        first.run(tmp_path / "cell", stop_after_epoch=1)
    assert first.ran == [0] and first.initialized == 1
    assert EpochCheckpoint(tmp_path / "cell", "toy").load()["epoch"] == 1

    resumed = _ToyRun()
    history = resumed.run(tmp_path / "cell")
    assert resumed.ran == [1, 2] and resumed.initialized == 0
    assert [row["epoch"] for row in history] == [1, 2, 3]

    straight = _ToyRun()
    straight_history = straight.run(tmp_path / "other")
    assert torch.equal(resumed.model.weight, straight.model.weight)
    assert [row["loss"] for row in history] == [row["loss"] for row in straight_history]

    finished = _ToyRun()
    finished.run(tmp_path / "cell")  # a finished stage is restored, not retrained
    assert finished.ran == [] and torch.equal(finished.model.weight, straight.model.weight)


def test_checkpoint_of_another_schedule_is_refused(tmp_path) -> None:
    _ToyRun().run(tmp_path, epochs=1)
    with pytest.raises(ValueError, match="1 epochs, not 'toy' with 2"):
        _ToyRun().run(tmp_path, epochs=2)
