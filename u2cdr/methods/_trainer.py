"""Pieces every method's plain PyTorch loop shares: optimiser and schedule, the epoch loop with
resumable checkpoints, progress bars, loss logging and divergence checks.

Methods own their loops (no mmengine Runner, see DESIGN.md), but not these chores. Checkpoints
hold tensors and plain Python only, so they load with ``torch.load(weights_only=True)`` on
torch ≥ 2.6 (harness-lessons §F), and they restore every random-number state, so an interrupted
and resumed run reproduces an uninterrupted one on the CPU.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import random
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, TypeVar

import numpy as np
import torch
from tqdm import tqdm

logger = logging.getLogger("u2cdr")

T = TypeVar("T")

NO_PROGRESS_ENV = "U2CDR_NO_PROGRESS"


class TrainingDiverged(RuntimeError):
    """A loss term became NaN or infinite; the message names the term, epoch and step."""


class TrainingInterrupted(RuntimeError):
    """Training stopped on request after a saved epoch (simulated pre-emption); resumable."""


class Stateful(Protocol):
    def state_dict(self) -> Mapping[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> Any: ...


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``; a clear error when CUDA is asked for but absent."""
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but CUDA is not available here; use device='cpu'")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device={str(device)!r} is not supported; valid: 'cpu', 'cuda', 'cuda:N'")
    return resolved


def make_sgd(parameters: Iterable[torch.nn.Parameter], lr: float, momentum: float = 0.9,
             weight_decay: float = 0.0) -> torch.optim.SGD:
    """SGD with momentum (UEM §3.1: SGD, momentum 0.9)."""
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    """Learning rate "cosine-annealed to zero" (UEM §3.1), per step: ``base·½(1+cos(π·t/T))``.

    Per step rather than per epoch (MoCo's ``--cos``) so short CPU schedules still anneal
    smoothly; the two agree for long schedules.
    """
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def progress_enabled() -> bool:
    """Bars only on an interactive terminal, and never when ``U2CDR_NO_PROGRESS=1``."""
    return os.environ.get(NO_PROGRESS_ENV, "0") != "1" and sys.stderr.isatty()


def progress_bar(iterable: Iterable[T], total: int, desc: str) -> Iterator[T]:
    """A tqdm bar over ``iterable`` that is silent in logs and batch jobs."""
    return iter(tqdm(iterable, total=total, desc=desc, leave=False, disable=not progress_enabled()))


def check_finite(terms: Mapping[str, torch.Tensor], epoch: int, step: int) -> None:
    """Raise ``TrainingDiverged`` naming the first NaN/inf loss term (``epoch``, ``step`` 1-based)."""
    for name, value in terms.items():
        if not bool(torch.isfinite(value.detach()).all()):
            raise TrainingDiverged(f"loss term {name!r} is {float(value.detach().reshape(-1)[0])} at "
                                   f"epoch {epoch}, step {step}; lower the learning rate or check the "
                                   "inputs")


class LossMeter:
    """Running means of named loss terms over an epoch, as plain floats for logs and records."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._count = 0

    def add(self, terms: Mapping[str, torch.Tensor]) -> None:
        for name, value in terms.items():
            self._sums[name] = self._sums.get(name, 0.0) + float(value.detach())
        self._count += 1

    def means(self) -> dict[str, float]:
        return {name: total / max(self._count, 1) for name, total in self._sums.items()}


class GeneratorState:
    """A ``torch.Generator`` seen as a ``Stateful``, so it is checkpointed with the model."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.generator.set_state(state["state"])


def capture_rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy-legacy and Python ``random`` states, weights-only safe.

    numpy's legacy state holds an ndarray, which ``weights_only`` refuses; it is stored as a
    tensor and rebuilt on restore.
    """
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached_gaussian)},
        "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_initialized():  # only a run that uses CUDA has CUDA random state to keep
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["name"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]),
                     python_state["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class EpochCheckpoint:
    """``work_dir/ckpt/<stage>.pth``: the state after the last finished epoch of one stage.

    Written to a temporary file and renamed, so a crash mid-write leaves the previous epoch's
    checkpoint intact; read with ``weights_only=True``.
    """

    def __init__(self, work_dir: str | Path, stage: str) -> None:
        self.path = Path(work_dir) / "ckpt" / f"{stage}.pth"

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, payload: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        torch.save(dict(payload), temporary)
        os.replace(temporary, self.path)

    def load(self) -> dict[str, Any]:
        try:
            return torch.load(self.path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"checkpoint {self.path} cannot be read with torch.load(weights_only=True) "
                             f"({reason}); delete it to start the cell over") from error


_checkpoint_every = 1


@contextlib.contextmanager
def checkpoint_interval(every: int) -> Iterator[None]:
    """Within the block, ``run_epochs`` saves every ``every``-th epoch and the last (0: none).

    The harness sets it from the grid key ``checkpoint_every``: how often to save trades disk and
    time against lost work, a policy of the run rather than a method hyper-parameter, so it stays
    out of method configs and cell keys.
    """
    global _checkpoint_every
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ValueError(f"checkpoint_every must be an int >= 0, got {every!r}")
    previous, _checkpoint_every = _checkpoint_every, every
    try:
        yield
    finally:
        _checkpoint_every = previous


def run_epochs(*, stage: str, epochs: int, work_dir: str | Path, stateful: Mapping[str, Stateful],
               train_epoch: Callable[[int], Mapping[str, float]],
               initialize: Callable[[], None] | None = None,
               stop_after_epoch: int | None = None) -> list[dict[str, float]]:
    """Run ``train_epoch(epoch)`` for epochs ``0..epochs-1``, checkpointing after each one
    (every ``checkpoint_every``-th one and the last, when the harness sets it; see
    ``checkpoint_interval``).

    When ``work_dir/ckpt/<stage>.pth`` exists, every object of ``stateful`` and the random
    states are restored from it and training continues with the next epoch (a finished stage
    is not rerun); otherwise ``initialize()`` runs first (e.g. memory-bank initialisation,
    which a resumed run must not redo).

    Args:
        stage: checkpoint name, e.g. 'instdisc' or UEM's 'idse' / 'cdsm'.
        epochs: total epochs of the stage.
        work_dir: the cell's folder.
        stateful: everything whose state must survive a restart (model, optimiser, banks,
            sampler generator), keyed by a stable name.
        train_epoch: trains one epoch (0-based argument) and returns its mean loss terms.
        initialize: runs only on a fresh start.
        stop_after_epoch: stop with ``TrainingInterrupted`` right after saving this epoch
            (1-based; for tests and pre-emption drills).

    Returns:
        One dict per finished epoch: ``{'epoch': e (1-based), <loss term>: mean, …}``.
    """
    checkpoint = EpochCheckpoint(work_dir, stage)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if checkpoint.exists():
        saved = checkpoint.load()
        if saved.get("epochs") != epochs or saved.get("stage") != stage:
            raise ValueError(f"checkpoint {checkpoint.path} is for stage {saved.get('stage')!r} with "
                             f"{saved.get('epochs')} epochs, not {stage!r} with {epochs}; remove it to "
                             "start over")
        missing = sorted(set(stateful) - set(saved["state"]))
        if missing:
            raise ValueError(f"checkpoint {checkpoint.path} lacks the state of {missing}")
        for name, obj in stateful.items():
            obj.load_state_dict(saved["state"][name])
        restore_rng_state(saved["rng"])
        start_epoch = int(saved["epoch"])
        history = list(saved["history"])
        logger.info("%s: resumed from %s after epoch %d/%d", stage, checkpoint.path, start_epoch, epochs)
    elif initialize is not None:
        initialize()

    for epoch in range(start_epoch, epochs):
        losses = dict(train_epoch(epoch))
        history.append({"epoch": epoch + 1, **losses})
        logger.info("%s epoch %d/%d: %s", stage, epoch + 1, epochs,
                    ", ".join(f"{name}={value:.4f}" for name, value in losses.items()))
        every = _checkpoint_every
        saved = every > 0 and ((epoch + 1) % every == 0 or epoch + 1 == epochs)
        if saved:
            checkpoint.save({"stage": stage, "epoch": epoch + 1, "epochs": epochs,
                             "state": {name: obj.state_dict() for name, obj in stateful.items()},
                             "rng": capture_rng_state(), "history": history})
        if stop_after_epoch is not None and epoch + 1 == stop_after_epoch < epochs:
            resume = (f"the next fit resumes from {checkpoint.path}" if saved else
                      "no checkpoint was saved for this epoch (checkpoint_every), so the next fit "
                      "starts over")
            raise TrainingInterrupted(f"{stage}: stopped after epoch {epoch + 1}/{epochs} as requested; "
                                      f"{resume}")
    return history
