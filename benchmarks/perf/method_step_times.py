"""Training cost per step of every method in the digits library, relative to instdisc (not a test).

A step is one paired batch (``DomainPair.paired_batches`` yields ``(x_a, idx_a, x_b, idx_b)``,
``batch_size`` images of each domain). Every method's loop draws its batches from that one
method, so this script wraps it: each epoch yields at most ``--steps-per-epoch`` batches, and
the time from handing out a batch to the request for the next one (the method's forward,
backward and update on that batch, plus loading the next batch) is one step. The epoch then
ends early; the method's schedule
(epochs, stages, warm-ups) is otherwise its digits config (``benchmarks/_base_/methods/
digits.py``), so steps of every phase are sampled (UEM's CDSM steps too). Work outside steps —
memory-bank initialisation, per-epoch clustering, feature passes — is in ``fit_s`` but not in
the step times.

    python benchmarks/perf/method_step_times.py [--methods instdisc uem ...]
        [--pair mnist uci] [--scenario closed] [--steps-per-epoch 2] [--threads 1]

Methods run one after the other in this process (same machine load for all), after a one-epoch
warm-up fit of instdisc (the first fit in a process pays one-off costs: about 2.5× slower steps
here); ``ratio`` is the median step over instdisc's median step, and instdisc is timed again at
the end to show how far the machine's load drifted. On a shared machine run it twice.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("U2CDR_NO_PROGRESS", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from tabulate import tabulate  # noqa: E402

from u2cdr.data.build import build_pair  # noqa: E402
from u2cdr.data.pair import DomainPair  # noqa: E402
from u2cdr.engine.cell import seed_everything  # noqa: E402
from u2cdr.registry import DATASETS, METHODS, build, import_all_components, lookup  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BASELINE = "instdisc"


class StepClock:
    """Wraps ``DomainPair.paired_batches``: short epochs, and the seconds of every step."""

    def __init__(self, steps_per_epoch: int) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.step_seconds: list[float] = []
        self._original = DomainPair.paired_batches

    def __enter__(self) -> "StepClock":
        clock, original = self, self._original

        def timed_batches(pair, *args, **kwargs):
            handed_out = None
            for count, batch in enumerate(original(pair, *args, **kwargs)):
                if handed_out is not None:
                    clock.step_seconds.append(time.perf_counter() - handed_out)
                if count == clock.steps_per_epoch:
                    return
                handed_out = time.perf_counter()
                yield batch

        DomainPair.paired_batches = timed_batches
        return self

    def __exit__(self, *exc_info) -> None:
        DomainPair.paired_batches = self._original


def time_method(name: str, method_cfg: dict, dataset, args: argparse.Namespace,
                scratch: Path) -> dict:
    """One row: step statistics and the whole fit's wall time (or why it could not run)."""
    row: dict = {"method": name}
    cls = lookup(METHODS, method_cfg["type"], name)
    if args.scenario not in cls.supports:
        return {**row, "note": f"does not support {args.scenario}"}
    if not cls.trains:
        return {**row, "note": "trains nothing"}
    scratch.mkdir(parents=True, exist_ok=True)
    seed_everything(args.seed)
    pair = build_pair(dataset, *args.pair, args.scenario, args.seed, scratch / "split.json")
    method = build(METHODS, method_cfg, name, device="cpu")
    with StepClock(args.steps_per_epoch) as clock:
        started = time.perf_counter()
        try:
            method.fit(pair, scratch / name)
        except Exception as error:  # a row per method, whatever one of them does
            traceback.print_exc(file=sys.stderr)
            return {**row, "note": f"failed: {type(error).__name__}: {error}"[:120]}
        fit_s = time.perf_counter() - started
    steps = clock.step_seconds
    if not steps:
        return {**row, "fit_s": fit_s, "note": "draws no paired batches"}
    return {**row, "steps": len(steps), "median_ms": 1000 * statistics.median(steps),
            "mean_ms": 1000 * statistics.fmean(steps), "max_ms": 1000 * max(steps),
            "fit_s": fit_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=None,
                        help="library names (default: all of the digits library)")
    parser.add_argument("--pair", nargs=2, default=["mnist", "uci"], metavar=("QUERY", "GALLERY"))
    parser.add_argument("--scenario", default="closed", choices=["closed", "partial", "open"])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--steps-per-epoch", type=int, default=2,
                        help="batches (timed steps) per epoch")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: steadier on a shared machine)")
    args = parser.parse_args(argv)
    if args.steps_per_epoch < 1:
        parser.error("--steps-per-epoch must be at least 1")
    torch.set_num_threads(args.threads)
    import_all_components()
    library = Config.fromfile(str(REPO / "benchmarks/_base_/methods/digits.py")).method_library
    library = library.to_dict()
    names = args.methods or list(library)
    unknown = sorted(set(names) - set(library))
    if unknown:
        parser.error(f"not in the digits method library: {unknown}; choices: {sorted(library)}")
    names = [BASELINE] + [name for name in names if name != BASELINE]
    dataset_cfg = Config.fromfile(str(REPO / "benchmarks/_base_/datasets/digits.py")).digits
    dataset_cfg = {key: value for key, value in dataset_cfg.to_dict().items() if key != "pairs"}
    dataset = build(DATASETS, dataset_cfg, "digits")

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        time_method(BASELINE, {**library[BASELINE], "epochs": 1}, dataset, args,
                    Path(scratch) / "warm-up")
        for name in names:
            rows.append(time_method(name, dict(library[name]), dataset, args, Path(scratch)))
            print(f"  {name}: done", file=sys.stderr, flush=True)
        if len(names) > 1:
            again = time_method(BASELINE, dict(library[BASELINE]), dataset, args,
                                Path(scratch) / "again")
            rows.append({**again, "method": f"{BASELINE} (again)"})
    baseline = next((row["median_ms"] for row in rows
                     if row["method"] == BASELINE and "median_ms" in row), None)
    for row in rows:
        if baseline and "median_ms" in row:
            row["ratio"] = row["median_ms"] / baseline
    columns = ["method", "steps", "median_ms", "mean_ms", "max_ms", "ratio", "fit_s", "note"]
    table = [[row.get(column, "") for column in columns] for row in rows]
    print(f"{args.pair[0]}→{args.pair[1]}, {args.scenario}, seed {args.seed}, torch threads "
          f"{torch.get_num_threads()}, {args.steps_per_epoch} batches per epoch (epochs and stages "
          f"as configured); ratio = median step / {BASELINE}'s median step.")
    print(tabulate(table, headers=columns, floatfmt=".2f", tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
