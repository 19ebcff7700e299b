"""Running the cells of a grid: skip finished ones, claim, launch, record, go on.

Launchers: ``local`` runs each cell in a fresh Python subprocess (a crash or a leak stays in
its cell; the default), ``inline`` runs it in this process (for debugging), ``slurm`` submits
each cell as a cluster job through submitit (``u2cdr.engine.slurm``). A failed cell is recorded
and the grid continues; an interrupt leaves every finished ``result.json`` intact and the next
``u2cdr run`` repeats only unfinished cells.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from u2cdr.engine.cell import CELL_SPEC_FILE, LOG_FILE, execute, skipped_record
from u2cdr.engine.grid import Cell
from u2cdr.engine.store import (STATUS_FILE, claim, finished_record, heartbeat, read_json,
                                release, write_json_atomic, write_status)
from u2cdr.engine.frozen_mode import needs_images_reason
from u2cdr.registry import DATASETS, METHODS, lookup

if TYPE_CHECKING:
    from u2cdr.engine.slurm import SlurmSettings

LAUNCHERS = ("local", "inline", "slurm")
HEARTBEAT_SECONDS = 30.0


@dataclass
class GridSummary:
    """Counts per outcome and the failures with their error and log path."""

    counts: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str, Path]] = field(default_factory=list)
    submitted: list[tuple[str, str]] = field(default_factory=list)  # (cell label, job id)

    def line(self) -> str:
        order = ("done", "skipped", "failed", "busy", "queued or running", "ran")
        return ", ".join(f"{self.counts[k]} {k}" for k in order if self.counts[k])


def _progress_disabled() -> bool:
    return os.environ.get("U2CDR_NO_PROGRESS") == "1"


def _launch_subprocess(cell_dir: Path, timeout: float | None) -> int:
    """Run the cell in a child interpreter; its stdout goes to the cell's log."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")])
    with open(cell_dir / LOG_FILE, "a") as log:
        child = subprocess.Popen([sys.executable, "-m", "u2cdr.engine.cell", str(cell_dir)],
                                 stdout=log, stderr=subprocess.STDOUT if _progress_disabled() else None,
                                 env=env)
        started = last_beat = time.time()
        try:
            while True:
                try:
                    return child.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    pass
                now = time.time()
                if now - last_beat > HEARTBEAT_SECONDS:
                    heartbeat(cell_dir)
                    last_beat = now
                if timeout is not None and now - started > timeout:
                    child.kill()
                    child.wait()
                    write_status(cell_dir, "failed", error=f"timed out after {timeout:.0f} s "
                                                           f"(cell_timeout)")
                    return 124
        except BaseException:
            child.kill()
            child.wait()
            raise


def run_cells(cells: list[Cell], work_dir: Path, *, launcher: str = "local", device: str = "cpu",
              custom_imports: list[str] | None = None, cell_timeout: float | None = None,
              checkpoint_every: int = 1, slurm: SlurmSettings | None = None,
              wait: bool = True) -> GridSummary:
    """Run every unfinished cell of ``cells`` under ``work_dir``; return what happened.

    ``checkpoint_every``: epochs between a training cell's resumable checkpoints (0: none).
    ``slurm`` and ``wait`` are read by the ``slurm`` launcher only: its job settings, and
    whether to wait for the jobs (False: submit and return; a later run collects them).
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f"unknown launcher {launcher!r}; valid choices: {', '.join(LAUNCHERS)}")
    if launcher == "slurm":
        from u2cdr.engine.slurm import SlurmSettings, run_cells_as_jobs

        return run_cells_as_jobs(cells, work_dir, slurm or SlurmSettings(), device=device,
                                 custom_imports=custom_imports, cell_timeout=cell_timeout,
                                 checkpoint_every=checkpoint_every, wait=wait)
    summary = GridSummary()
    bar = tqdm(total=len(cells), desc="grid", unit="cell", disable=_progress_disabled(),
               dynamic_ncols=True)
    try:
        for cell in cells:
            cell_dir = work_dir / cell.relative_dir
            record = finished_record(cell_dir, cell.key)
            if record is None:
                _run_one(cell, cell_dir, work_dir, launcher, device, custom_imports, cell_timeout,
                         checkpoint_every, summary, bar)
            else:
                summary.counts[record["status"]] += 1
            bar.update(1)
            bar.set_postfix_str(summary.line())
    finally:
        bar.close()
    return summary


def record_if_unrunnable(cell: Cell, cell_dir: Path) -> bool:
    """Write a skipped record when the cell's method cannot run it; True when it did.

    A method declares the scenarios it supports, and image-only methods cannot train on a
    dataset of vectors; such a cell is recorded (tables print n/a) instead of launched.
    """
    method_cls = lookup(METHODS, cell.method_cfg["type"], cell.method)
    reason = None
    if cell.scenario not in method_cls.supports:
        reason = f"{cell.method} supports {sorted(method_cls.supports)}, not {cell.scenario!r}"
    elif lookup(DATASETS, cell.dataset_cfg["type"], cell.dataset).input_column != "image":
        reason = needs_images_reason(method_cls, cell.method)
    if reason is None:
        return False
    cell_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cell_dir / "result.json", skipped_record(cell.spec(), reason, method_cls))
    return True


def write_cell_spec(cell: Cell, cell_dir: Path, work_dir: Path, device: str,
                    custom_imports: list[str] | None, checkpoint_every: int) -> None:
    """``cell.json``: everything the cell process (``u2cdr.engine.cell``) needs to run it."""
    write_json_atomic(cell_dir / CELL_SPEC_FILE, {"spec": cell.spec(), "work_dir": str(work_dir),
                                                  "device": device,
                                                  "custom_imports": custom_imports or [],
                                                  "checkpoint_every": checkpoint_every})


def failure_reason(cell_dir: Path, fallback: str) -> str:
    """The error the cell recorded in ``status.json``, else ``fallback``."""
    status = read_json(cell_dir / STATUS_FILE) or {}
    return status.get("error") or fallback


def _run_one(cell: Cell, cell_dir: Path, work_dir: Path, launcher: str, device: str,
             custom_imports: list[str] | None, cell_timeout: float | None, checkpoint_every: int,
             summary: GridSummary, bar: tqdm) -> None:
    if record_if_unrunnable(cell, cell_dir):
        summary.counts["skipped"] += 1
        return
    if not claim(cell_dir):
        summary.counts["busy"] += 1
        bar.write(f"busy (another runner holds it): {cell.label}")
        return
    try:
        record = finished_record(cell_dir, cell.key)
        if record is not None:  # another runner finished it between our check and our claim
            summary.counts[record["status"]] += 1
            return
        write_cell_spec(cell, cell_dir, work_dir, device, custom_imports, checkpoint_every)
        bar.set_description_str(f"{cell.method} {cell.query}→{cell.gallery} {cell.scenario} "
                                f"s{cell.seed}")
        if launcher == "inline":
            execute(cell_dir)
        else:
            _launch_subprocess(cell_dir, cell_timeout)
    finally:
        release(cell_dir)
    record = finished_record(cell_dir, cell.key)
    if record is not None:
        summary.counts[record["status"]] += 1
        return
    error = failure_reason(cell_dir, "the cell process ended without a result (see its log)")
    summary.counts["failed"] += 1
    summary.failures.append((cell.label, error, cell_dir / LOG_FILE))
    bar.write(f"FAILED {cell.label}: {error}\n  log: {cell_dir / LOG_FILE}")
