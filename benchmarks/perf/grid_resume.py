"""Wall time of a grid run cold and on resume, when every cell is finished (not a test).

A finished grid is rerun whenever more cells are added or tables are wanted again, so the
resume path — expand the grid, see every cell done, rebuild the tables — should cost seconds
(target < 10 s for the digits default grid), not the minutes of a cold run.

    python benchmarks/perf/grid_resume.py --resume-only DIR [--config benchmarks/default.py]
    python benchmarks/perf/grid_resume.py --cold [--work-dir DIR]   # the cold run: ~11 min

Each run is ``python -m u2cdr.cli run CONFIG --work-dir DIR`` (what the ``u2cdr`` console
script calls) in a subprocess. The table gives its wall time and the CPU time (user + sys)
the subprocess and its children used: on a shared machine the wall time grows with the load
(printed above the table), the CPU time much less. ``--resume-only`` first checks with
``--dry-run`` that every cell of DIR is finished, so it never starts training by surprise.
``--profile`` adds the resume run's most expensive u2cdr functions (cProfile, cumulative).
"""
from __future__ import annotations

import argparse
import os
import pstats
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

REPO = Path(__file__).resolve().parents[2]
FINISHED_STATES = ("done", "skipped")
SUMMARY_LINE = re.compile(r"^(\d+) cells: (.*)$")


def u2cdr_run(config: Path, work_dir: Path, *extra: str, profile_to: Path | None = None
              ) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``u2cdr run`` once; returns the process, its wall seconds and its CPU seconds."""
    prefix = [sys.executable]
    if profile_to is not None:
        prefix += ["-m", "cProfile", "-o", str(profile_to)]
    command = [*prefix, "-m", "u2cdr.cli", "run", str(config), "--work-dir", str(work_dir), *extra]
    env = {**os.environ, "U2CDR_NO_PROGRESS": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HUB_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return process, wall_s, cpu_s


def cell_states(config: Path, work_dir: Path) -> dict[str, int]:
    """``{state: count}`` from ``u2cdr run --dry-run``'s summary line."""
    process, _, _ = u2cdr_run(config, work_dir, "--dry-run")
    if process.returncode != 0:
        raise SystemExit(f"--dry-run failed (exit {process.returncode}):\n{process.stderr}")
    for line in reversed(process.stdout.splitlines()):
        match = SUMMARY_LINE.match(line.strip())
        if match:
            return {state: int(count) for count, state in
                    (part.split(" ", 1) for part in match.group(2).split(", "))}
    raise SystemExit(f"no summary line in the --dry-run output:\n{process.stdout[-2000:]}")


def print_profile(profile: Path, top: int = 15) -> None:
    """The ``top`` u2cdr functions of a profiled run by cumulative time."""
    stats = pstats.Stats(str(profile))
    rows = []
    for (filename, line, name), (_, calls, _, cumulative, _) in stats.stats.items():
        if "/u2cdr/" in filename:
            rows.append({"function": f"{Path(filename).name}:{line} {name}", "calls": calls,
                         "cumulative_s": cumulative})
    rows.sort(key=lambda row: -row["cumulative_s"])
    print(tabulate(rows[:top], headers="keys", floatfmt=".2f", tablefmt="github"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--resume-only", type=Path, metavar="DIR",
                      help="time the rerun of DIR, whose cells must all be finished")
    mode.add_argument("--cold", action="store_true",
                      help="run the grid from scratch into --work-dir first (~11 min on digits)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="with --cold: an empty or new folder (default: a new temp folder)")
    parser.add_argument("--config", type=Path, default=REPO / "benchmarks" / "default.py")
    parser.add_argument("--repeats", type=int, default=2, help="resume runs to time")
    parser.add_argument("--profile", action="store_true",
                        help="profile one more resume run and list its costliest functions")
    args = parser.parse_args(argv)
    config = args.config.resolve()

    rows = []
    if args.cold:
        work_dir = (args.work_dir or Path(tempfile.mkdtemp(prefix="u2cdr_grid_"))).resolve()
        if work_dir.exists() and any(work_dir.iterdir()):
            raise SystemExit(f"--cold needs an empty work dir; {work_dir} has files")
        process, wall_s, cpu_s = u2cdr_run(config, work_dir)
        if process.returncode != 0:
            raise SystemExit(f"the cold run failed (exit {process.returncode}):\n"
                             f"{process.stderr[-3000:]}")
        rows.append({"run": "cold", "wall_s": wall_s, "cpu_s": cpu_s, "exit": process.returncode})
    else:
        work_dir = args.resume_only.resolve()
    states = cell_states(config, work_dir)
    unfinished = {state: n for state, n in states.items() if state not in FINISHED_STATES}
    if unfinished:
        raise SystemExit(f"{work_dir} is not finished for {config.name}: {unfinished}; a rerun "
                         f"would train those cells, which is not the resume path")
    for repeat in range(1, args.repeats + 1):
        process, wall_s, cpu_s = u2cdr_run(config, work_dir)
        rows.append({"run": f"resume {repeat}", "wall_s": wall_s, "cpu_s": cpu_s,
                     "exit": process.returncode})

    load_1m, load_5m, _ = os.getloadavg()
    print(f"{config.relative_to(REPO) if config.is_relative_to(REPO) else config} → {work_dir}: "
          f"{sum(states.values())} cells ({states}); {os.cpu_count()} CPUs, load average "
          f"{load_1m:.1f} (1 min) {load_5m:.1f} (5 min). cpu_s = user + sys of the subprocess.")
    print(tabulate(rows, headers="keys", floatfmt=".2f", tablefmt="github"))
    if args.profile:
        with tempfile.TemporaryDirectory() as scratch:
            profile = Path(scratch) / "resume.prof"
            u2cdr_run(config, work_dir, profile_to=profile)
            print_profile(profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
