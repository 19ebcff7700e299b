"""The ``slurm`` launcher: each unfinished cell becomes a cluster job, submitted through submitit.

A job runs the same cell entry as the local launcher (``u2cdr.engine.cell.execute`` on a cell
folder holding ``cell.json``) under the same ``O_EXCL`` claim, so results land in the same store
and every other command (``u2cdr show``, ``u2cdr table``, a local rerun) reads them unchanged.

What makes reruns safe: the submitter records each cell's job in ``CELL_DIR/slurm_job.json``.
A rerun asks the scheduler (through submitit: ``sacct`` on Slurm) for that job's state and
leaves a queued or running job alone; only a cell whose job ended without a ``result.json``
(failed, cancelled, timed out, preempted) is submitted again. Pending cells go out as one job
array (``executor.map_array``) whose ``slurm_array_parallelism`` caps the jobs running at once.

``slurm=dict(cluster='local')`` runs the jobs as local processes through submitit's local
executor: for tests, and for machines without Slurm.
"""
from __future__ import annotations

import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from u2cdr.engine.cell import CELL_SPEC_FILE, LOG_FILE, execute
from u2cdr.engine.grid import Cell
from u2cdr.engine.runner import (HEARTBEAT_SECONDS, GridSummary, failure_reason,
                                 record_if_unrunnable, write_cell_spec)
from u2cdr.engine.store import (LOCK_FILE, claim, cell_state, finished_record, heartbeat,
                                read_json, release, write_json_atomic)
from u2cdr.registry import ConfigError, MissingExtraError, closest_name

JOB_FILE = "slurm_job.json"  # written by the submitter: the cell's latest job
JOB_CLAIM_FILE = "slurm_claim.json"  # written by the job when it takes the cell's lock
CLUSTERS = ("slurm", "local")
DEFAULT_TIME_MIN = 240
DEFAULT_LOCAL_PARALLELISM = 1
POLL_SECONDS = {"slurm": 5.0, "local": 0.5}
# Scheduler states of a job that may still run the cell (sacct's names; submitit's local
# executor says RUNNING). UNKNOWN is what sacct answers for a job it does not list yet, right
# after submission: like submitit's own ``Job.done``, it counts as not finished. PREEMPTED
# counts as ended (a requeued job shows REQUEUED or PENDING instead); should a preempted job
# come back after all, it finds its cell claimed or finished and leaves it alone.
ACTIVE_STATES = frozenset({"PENDING", "RUNNING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
                           "RESIZING", "SUSPENDED", "CONFIGURING", "COMPLETING", "SIGNALING",
                           "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD", "READY", "UNKNOWN"})

SLURM_KEYS = {
    "cluster": "'slurm' (default), or 'local': submitit runs the jobs as local processes "
               "(for tests and machines without Slurm)",
    "partition": "the Slurm partition (default: the cluster's)",
    "time": f"minutes a job may run (default: cell_timeout rounded up, else {DEFAULT_TIME_MIN})",
    "gpus": "GPUs per job (default: 1 with device 'cuda', else 0)",
    "cpus_per_task": "CPUs per job (default: the cluster's)",
    "mem_gb": "memory per job in GB (default: the cluster's)",
    "array_parallelism": "most jobs running at once (default: Slurm 256, local "
                         f"{DEFAULT_LOCAL_PARALLELISM})",
    "sbatch_options": "extra #SBATCH options, e.g. dict(account='lab', qos='high')",
    "log_dir": "where submitit keeps job scripts, pickles and logs; on Slurm a folder every "
               "node sees (default: WORK_DIR/slurm_logs)",
}


@dataclass(frozen=True)
class SlurmSettings:
    """The job settings of a grid's ``slurm=dict(...)`` (see ``SLURM_KEYS``)."""

    cluster: str = "slurm"
    partition: str | None = None
    time: int | None = None
    gpus: int | None = None
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    array_parallelism: int | None = None
    sbatch_options: dict = field(default_factory=dict)
    log_dir: str | None = None


def _check_int(key: str, value: Any, minimum: int = 1) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < minimum):
        raise ConfigError(f"slurm.{key}: expected an int >= {minimum} or None ({SLURM_KEYS[key]}), "
                          f"got {value!r}")


def parse_slurm_settings(raw: Mapping | None, overrides: Mapping | None = None) -> SlurmSettings:
    """Check a grid's ``slurm`` dict (plus CLI ``overrides``) and return its settings.

    An unknown key is named with the closest valid one and the list of valid keys, so a typo
    (``partiton``) stops the run instead of silently submitting to the default partition.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"slurm: expected a dict of job settings, got {raw!r}. Valid keys: "
                          f"{', '.join(SLURM_KEYS)}")
    values = {**raw, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    for key in values:
        if key not in SLURM_KEYS:
            hint = closest_name(str(key), list(SLURM_KEYS))
            suggestion = f" Did you mean {hint!r}?" if hint else ""
            raise ConfigError(f"slurm.{key}: unknown key.{suggestion} Valid keys: "
                              f"{', '.join(SLURM_KEYS)}")
    if values.get("cluster", "slurm") not in CLUSTERS:
        raise ConfigError(f"slurm.cluster: expected one of {', '.join(CLUSTERS)}, got "
                          f"{values['cluster']!r}")
    for key in ("partition", "log_dir"):
        if values.get(key) is not None and not isinstance(values[key], str):
            raise ConfigError(f"slurm.{key}: expected a string or None ({SLURM_KEYS[key]}), got "
                              f"{values[key]!r}")
    _check_int("time", values.get("time"))
    _check_int("gpus", values.get("gpus"), minimum=0)
    _check_int("cpus_per_task", values.get("cpus_per_task"))
    _check_int("array_parallelism", values.get("array_parallelism"))
    memory = values.get("mem_gb")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, (int, float))
                               or memory <= 0):
        raise ConfigError(f"slurm.mem_gb: expected a number > 0 or None, got {memory!r}")
    options = values.get("sbatch_options") or {}
    if not isinstance(options, Mapping) or not all(
            isinstance(name, str) and isinstance(value, (str, int, float, bool))
            for name, value in options.items()):
        raise ConfigError(f"slurm.sbatch_options: expected a dict of option name → value "
                          f"({SLURM_KEYS['sbatch_options']}), got {options!r}")
    return SlurmSettings(**{**values, "sbatch_options": dict(options)})


def job_parameters(settings: SlurmSettings, device: str, cell_timeout: float | None) -> dict:
    """``AutoExecutor.update_parameters`` arguments for one cell's job.

    A time limit is always given: submitit's own defaults (5 minutes on Slurm, 2 locally) would
    kill nearly every training cell. GPUs follow the device unless set, and a mismatch (GPUs
    the cells would not use, or a CUDA cell on a GPU-less job) stops the run before submitting.
    """
    on_gpu = str(device).startswith("cuda")
    gpus = settings.gpus if settings.gpus is not None else int(on_gpu)
    if gpus and not on_gpu:
        raise ConfigError(f"slurm.gpus={gpus} but device is {device!r}: the cells would leave the "
                          f"GPUs idle; set device='cuda' (--device cuda) or slurm.gpus=0")
    if on_gpu and not gpus:
        raise ConfigError(f"device is {device!r} but slurm.gpus=0: the jobs would have no GPU; "
                          f"set slurm.gpus >= 1 or --device cpu")
    minutes = settings.time or (math.ceil(cell_timeout / 60) if cell_timeout else DEFAULT_TIME_MIN)
    parameters: dict[str, Any] = {
        "name": "u2cdr", "timeout_min": int(minutes), "gpus_per_node": gpus,
        "cpus_per_task": settings.cpus_per_task, "mem_gb": settings.mem_gb,
        "slurm_partition": settings.partition,
        "slurm_array_parallelism": settings.array_parallelism,
        "slurm_additional_parameters": dict(settings.sbatch_options) or None,
    }
    return {key: value for key, value in parameters.items() if value is not None}


def make_executor(settings: SlurmSettings, work_dir: Path, device: str,
                  cell_timeout: float | None) -> Any:
    """A submitit ``AutoExecutor`` for ``settings.cluster`` (on Slurm one log folder per job)."""
    try:
        import submitit
    except ModuleNotFoundError as error:
        raise MissingExtraError("the slurm launcher needs submitit: pip install 'u2cdr[slurm]'"
                                ) from error
    parameters = job_parameters(settings, device, cell_timeout)
    folder = Path(settings.log_dir or work_dir / "slurm_logs").resolve()
    if settings.cluster == "slurm":  # one folder per job (submitit fills in %j); the local
        folder = folder / "%j"       # controller would create a folder literally named %j
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=settings.cluster)
    except RuntimeError as error:  # SlurmExecutor: no `srun` on this machine
        raise ConfigError(f"slurm.cluster='slurm' but this machine has no Slurm ({error}); submit "
                          f"from a login node, or use slurm=dict(cluster='local') to run the jobs "
                          f"as local processes") from error
    executor.update_parameters(**parameters)
    return executor


# ----- inside the job ----------------------------------------------------------------------------
class CellJobFailed(RuntimeError):
    """The cell of this job failed; raised so the scheduler records the job as failed."""


@contextmanager
def _heartbeat_while_running(cell_dir: Path) -> Iterator[None]:
    """Refresh the cell's lock while it runs, so runners on other hosts do not take it as stale."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            heartbeat(cell_dir)

    thread = threading.Thread(target=beat, name="u2cdr-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _this_job_id() -> str | None:
    import submitit

    try:
        return str(submitit.JobEnvironment().job_id)
    except RuntimeError:  # not inside a submitit job
        return None


def run_cell_job(cell_dir: str, import_paths: Sequence[str] = ()) -> str:
    """One job's work: claim the cell, run it (``execute``), release it; what happened.

    ``import_paths`` is the submitter's ``sys.path``, so a user's ``custom_imports`` module
    beside the config imports in the job as it does in the local launcher's cell process.
    A cell that finished, or that another runner holds, since submission is left alone.
    """
    for path in reversed(list(import_paths)):
        if path and path not in sys.path:
            sys.path.insert(0, path)
    folder = Path(cell_dir)
    payload = read_json(folder / CELL_SPEC_FILE)
    if not isinstance(payload, dict):
        raise CellJobFailed(f"cannot read {folder / CELL_SPEC_FILE}")
    key = payload["spec"]["key"]
    if finished_record(folder, key) is not None:
        return "finished before this job started"
    if not claim(folder):
        return "another runner holds the cell"
    try:
        lock = read_json(folder / LOCK_FILE) or {}
        taken_by = {"job_id": _this_job_id(), "host": lock.get("host"), "pid": lock.get("pid")}
        write_json_atomic(folder / JOB_CLAIM_FILE, taken_by)
        if finished_record(folder, key) is not None:
            return "finished before this job started"
        with _heartbeat_while_running(folder):
            exit_code = execute(folder)
    finally:
        release(folder)
    if exit_code != 0:
        error = failure_reason(folder, "the cell failed")
        raise CellJobFailed(f"{error} (log: {folder / LOG_FILE})")
    return "done"


# ----- the submitter -----------------------------------------------------------------------------
@dataclass
class _Tracked:
    """A cell whose job may still be running: the submitit job and how we know it."""

    cell: Cell
    cell_dir: Path
    job: Any
    record: dict  # the cell's JOB_FILE
    attached: bool  # re-attached from JOB_FILE (submitted by an earlier run)


def _is_active(state: str) -> bool:
    words = state.split()
    return bool(words) and words[0].upper() in ACTIVE_STATES


def _local_controller_running(pid: int) -> bool:
    """Whether submitit's local job controller ``pid`` (the local job id) is still alive.

    A local job from an earlier run has no process handle to poll, so its pid is looked up:
    alive, not a zombie, and still submitit's controller (not a recycled pid).
    """
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():  # not Linux: signal 0 is the only probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        command = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and b"submitit" in command


def _job_state(tracked: _Tracked) -> str:
    """The scheduler's word on the job: sacct through submitit on Slurm, the process locally."""
    job = tracked.job
    if job.paths.result_pickle.exists():  # written when the job's function returned or raised
        try:
            return "FAILED" if job.exception() is not None else "COMPLETED"
        except Exception:  # an unreadable result pickle: the job ended all the same
            return "ENDED"
    if tracked.record.get("cluster") == "local" and tracked.attached:
        if tracked.record.get("host") != socket.gethostname():
            return "UNKNOWN (a local job of another host)"
        return "RUNNING" if _local_controller_running(int(job.job_id)) else "ENDED"
    return str(job.state)


def _attach(record: dict) -> Any:
    import submitit

    job_class = submitit.SlurmJob if record["cluster"] == "slurm" else submitit.LocalJob
    return job_class(folder=record["log_folder"], job_id=str(record["job_id"]))


def _release_lock_of_ended_job(cell_dir: Path, job_id: str) -> None:
    """A job killed by the scheduler (time limit, preemption) cannot release the cell's lock; the
    lock's host is a compute node, so other hosts would wait an hour to call it stale. It is
    released here when the job that took it has ended."""
    taken = read_json(cell_dir / JOB_CLAIM_FILE)
    lock = read_json(cell_dir / LOCK_FILE)
    if (isinstance(taken, dict) and isinstance(lock, dict) and taken.get("job_id") == job_id
            and (taken.get("host"), taken.get("pid")) == (lock.get("host"), lock.get("pid"))):
        release(cell_dir)


def _say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def run_cells_as_jobs(cells: list[Cell], work_dir: Path, settings: SlurmSettings, *,
                      device: str = "cpu", custom_imports: list[str] | None = None,
                      cell_timeout: float | None = None, checkpoint_every: int = 1,
                      wait: bool = True) -> GridSummary:
    """Submit every unfinished cell without a live job; with ``wait``, follow them to the end.

    Without ``wait`` the jobs still queued or running are counted as such and left to the next
    ``u2cdr run``, which re-attaches to them instead of submitting again.
    """
    executor = make_executor(settings, work_dir, device, cell_timeout)
    summary = GridSummary()
    unfinished: list[tuple[Cell, Path, _Tracked | None]] = []
    for cell in cells:
        cell_dir = work_dir / cell.relative_dir
        record = finished_record(cell_dir, cell.key)
        if record is not None:
            summary.counts[record["status"]] += 1
        elif record_if_unrunnable(cell, cell_dir):
            summary.counts["skipped"] += 1
        else:
            previous = read_json(cell_dir / JOB_FILE)
            earlier = None
            if isinstance(previous, dict) and previous.get("key") == cell.key:
                earlier = _Tracked(cell, cell_dir, _attach(previous), previous, attached=True)
            unfinished.append((cell, cell_dir, earlier))
    # Every earlier job is attached before any state is read, so submitit's watcher asks sacct
    # about all of them in one call rather than once per cell.
    tracked: dict[Path, _Tracked] = {}
    to_submit: list[tuple[Cell, Path, int]] = []  # (cell, folder, attempts so far)
    for cell, cell_dir, earlier in unfinished:
        attempts = 0
        if earlier is not None:
            job_id = earlier.record["job_id"]
            attempts = int(earlier.record.get("attempts", 1))
            state = _job_state(earlier)
            if _is_active(state):
                tracked[cell_dir] = earlier
                _say(f"job {job_id} {state.lower()}: {cell.label}")
                continue
            _release_lock_of_ended_job(cell_dir, str(job_id))
            record = finished_record(cell_dir, cell.key)
            if record is not None:  # it finished as we looked
                summary.counts[record["status"]] += 1
                continue
            _say(f"job {job_id} ended ({state}) without a result; submitting again: {cell.label}")
        if cell_state(cell_dir, cell.key) == "running":
            summary.counts["busy"] += 1
            _say(f"busy (another runner holds it): {cell.label}")
            continue
        write_cell_spec(cell, cell_dir, work_dir, device, custom_imports, checkpoint_every)
        to_submit.append((cell, cell_dir, attempts))

    cap = settings.array_parallelism or (DEFAULT_LOCAL_PARALLELISM
                                         if settings.cluster == "local" else len(to_submit))

    def submit_what_fits() -> None:
        # Slurm enforces the cap itself (the array's %N); submitit's local executor starts every
        # job it is given at once, so local jobs go out only as running ones end.
        room = len(to_submit) if settings.cluster == "slurm" else max(cap - len(tracked), 0)
        batch, to_submit[:] = to_submit[:room], to_submit[room:]
        if batch:
            _submit(executor, batch, settings, tracked, summary)

    submit_what_fits()
    if not wait:
        summary.counts["queued or running"] += len(tracked)
        if to_submit:
            _say(f"{len(to_submit)} cells wait for a free local slot (array_parallelism={cap}); "
                 f"run again to submit them")
        return summary
    _follow(tracked, to_submit, submit_what_fits, summary, total=len(cells),
            cluster=settings.cluster)
    return summary


def _submit(executor: Any, batch: list[tuple[Cell, Path, int]], settings: SlurmSettings,
            tracked: dict[Path, _Tracked], summary: GridSummary) -> None:
    """Submit ``batch`` as one job array and record each cell's job in its folder."""
    import_paths = [path for path in sys.path if path]
    jobs = executor.map_array(run_cell_job, [str(cell_dir) for _, cell_dir, _ in batch],
                              [import_paths] * len(batch))
    for (cell, cell_dir, attempts), job in zip(batch, jobs):
        record = {"key": cell.key, "job_id": str(job.job_id), "cluster": settings.cluster,
                  "log_folder": str(executor.folder), "host": socket.gethostname(),
                  "submitted": time.time(), "attempts": attempts + 1}
        write_json_atomic(cell_dir / JOB_FILE, record)
        tracked[cell_dir] = _Tracked(cell, cell_dir, job, record, attached=False)
        summary.submitted.append((cell.label, str(job.job_id)))
        _say(f"submitted job {job.job_id}: {cell.label}")


def _record_failure(entry: _Tracked, state: str, summary: GridSummary) -> None:
    """Count a cell whose job ended without a result, pointing at the log that explains it.

    A cell that raised recorded its error in ``status.json`` (traceback in the cell's log); a job
    the scheduler killed (time limit, memory, preemption) left only submitit's job log. A job
    that found another runner on the cell left it to that runner: busy, not failed.
    """
    if cell_state(entry.cell_dir, entry.cell.key) == "running":
        summary.counts["busy"] += 1
        _say(f"busy (another runner holds it): {entry.cell.label}")
        return
    job_log = Path(entry.job.paths.stderr)
    scheduler_error = f"job {entry.job.job_id} ended ({state}) without a result"
    error = failure_reason(entry.cell_dir, scheduler_error)
    log = job_log if error == scheduler_error else entry.cell_dir / LOG_FILE
    summary.counts["failed"] += 1
    summary.failures.append((entry.cell.label, error, log))
    _say(f"FAILED {entry.cell.label}: {error}\n  log: {log}")


def _follow(tracked: dict[Path, _Tracked], to_submit: list, submit_what_fits: Callable[[], None],
            summary: GridSummary, *, total: int, cluster: str) -> None:
    """Wait for every tracked job, counting each cell as its job ends; a bar over finished cells."""
    bar = tqdm(total=total, initial=total - len(tracked) - len(to_submit), desc="jobs",
               unit="cell", dynamic_ncols=True, disable=os.environ.get("U2CDR_NO_PROGRESS") == "1")
    try:
        while tracked or to_submit:
            for cell_dir, entry in list(tracked.items()):
                state = _job_state(entry)
                if _is_active(state) and finished_record(cell_dir, entry.cell.key) is None:
                    continue
                if _is_active(state):  # the record is written; the job is still tearing down
                    state = "COMPLETED"
                del tracked[cell_dir]
                record = finished_record(cell_dir, entry.cell.key)
                if record is not None:
                    summary.counts[record["status"]] += 1
                else:
                    _record_failure(entry, state, summary)
                bar.update(1)
                bar.set_postfix_str(summary.line())
            submit_what_fits()
            if tracked or to_submit:
                time.sleep(POLL_SECONDS[cluster])
    except KeyboardInterrupt:
        if tracked and cluster == "slurm":
            _say(f"u2cdr: stopped waiting; the {len(tracked)} submitted jobs go on (scancel them "
                 f"to stop them; `u2cdr run` again collects them)")
        raise
    finally:
        bar.close()
