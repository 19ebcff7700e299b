"""The ``u2cdr`` command: run | show | table | list."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mmengine.config import DictAction

from u2cdr.registry import REGISTRIES, ConfigError, MissingExtraError

EXIT_CONFIG_ERROR = 2
EXIT_INTERRUPTED = 130


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="grid config (.py, .yaml or .json)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        metavar="KEY=VALUE",
                        help="override config keys, e.g. seeds=[2024] 'methods=[instdisc]'")
    parser.add_argument("--work-dir", help="where results go (overrides the config's work_dir)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="u2cdr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run every unfinished cell of a grid, then write tables")
    _add_config_arguments(run)
    run.add_argument("--dry-run", action="store_true", help="check the config and list the cells")
    run.add_argument("--launcher", default="local", choices=["local", "inline", "slurm"],
                     help="local: one subprocess per cell (default); inline: this process; "
                          "slurm: one cluster job per cell through submitit (config key slurm)")
    run.add_argument("--device", help="cpu or cuda (overrides the config's device)")
    cluster = run.add_argument_group("slurm launcher (override the config's slurm=dict(...))")
    cluster.add_argument("--slurm-partition", help="the Slurm partition")
    cluster.add_argument("--slurm-time", type=int, metavar="MINUTES", help="time limit per job")
    cluster.add_argument("--slurm-gpus", type=int, help="GPUs per job")
    cluster.add_argument("--slurm-array-parallelism", type=int, metavar="N",
                         help="most jobs running at once")
    cluster.add_argument("--no-wait", action="store_true",
                         help="submit and return; `u2cdr run` again later collects the jobs "
                              "and submits again only cells whose job failed")

    show = commands.add_parser("show", help="print the expanded grid with each cell's state")
    _add_config_arguments(show)

    table = commands.add_parser("table", help="paper-layout tables from a work dir's results")
    table.add_argument("work_dir")
    table.add_argument("--format", choices=["md", "latex"], default="md")
    table.add_argument("--paper", action="store_true", help="add the published numbers")
    table.add_argument("--delta", action="store_true", help="with --paper: ours − paper")
    table.add_argument("--layout", choices=["pairs", "ablation"], default="pairs",
                       help="pairs: one table per dataset and scenario (default); ablation: "
                            "UEM's ablation variants as the paper's Table 4")
    table.add_argument("--out", help="write to this file instead of printing")

    convert = commands.add_parser(
        "convert", help="feature files (.mat/.npz/.csv, one file or a folder of one per domain) "
                        "to one parquet file for the `features` dataset")
    convert.add_argument("source", help="a feature file, or a folder with one file per domain")
    convert.add_argument("out", help="the .parquet file to write")
    convert.add_argument("--features-key", help="array/column holding the features")
    convert.add_argument("--labels-key", help="array/column holding the labels")
    convert.add_argument("--label-base", default="auto", choices=["auto", "0", "1"],
                         help="the id of the first class in the files (default: detected)")
    convert.add_argument("--class-names", help="file with one class name per line, in id order")
    convert.add_argument("--domain", help="the domain name of a single file (default: its stem)")

    from u2cdr.report.command import add_report_arguments

    report = commands.add_parser(
        "report", help="one Markdown/LaTeX document: every table, paper numbers and deltas, "
                       "GAP decisions, environment, retrieval / t-SNE / bar-chart figures")
    add_report_arguments(report)

    listing = commands.add_parser("list", help="registered components")
    listing.add_argument("kind", choices=sorted(REGISTRIES))
    return parser


def _load(args: argparse.Namespace):
    from u2cdr.engine.config import load_grid_config
    from u2cdr.engine.grid import expand_grid
    from u2cdr.registry import import_all_components

    cfg = load_grid_config(args.config, args.cfg_options)
    import_all_components()
    if args.work_dir:
        cfg.work_dir = args.work_dir
    return cfg, expand_grid(cfg)


def _print_cells(cells, work_dir: Path) -> None:
    from collections import Counter

    from u2cdr.engine.store import cell_state

    states = Counter()
    for cell in cells:
        state = cell_state(work_dir / cell.relative_dir, cell.key)
        states[state] += 1
        print(f"{state:8s} {cell.key[:8]}  {cell.label}")
    print(f"{len(cells)} cells: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))


def _slurm_flags(args: argparse.Namespace) -> dict:
    """The ``--slurm-*`` flags given, as ``slurm`` config keys."""
    flags = {"partition": args.slurm_partition, "time": args.slurm_time, "gpus": args.slurm_gpus,
             "array_parallelism": args.slurm_array_parallelism}
    return {key: value for key, value in flags.items() if value is not None}


def command_run(args: argparse.Namespace) -> int:
    import torch

    from u2cdr.engine.config import custom_import_names, slurm_settings
    from u2cdr.engine.grid import check_methods_build
    from u2cdr.engine.runner import run_cells

    cfg, cells = _load(args)
    device = args.device or cfg.device
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ConfigError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    flags = _slurm_flags(args)
    if args.launcher != "slurm" and (flags or args.no_wait):
        given = [f"--slurm-{k.replace('_', '-')}" for k in flags] + ["--no-wait"] * args.no_wait
        raise ConfigError(f"{', '.join(given)}: only with --launcher slurm")
    slurm = slurm_settings(cfg, flags) if args.launcher == "slurm" else None
    if slurm is not None:
        from u2cdr.engine.slurm import job_parameters

        job_parameters(slurm, device, cfg.cell_timeout)  # GPUs vs device, before any data loads
    # Slurm jobs run on compute nodes: the GPU is theirs, not this (login) node's.
    runs_here = slurm is None or slurm.cluster == "local"
    if str(device).startswith("cuda") and runs_here and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} was asked for but torch sees no CUDA device; "
                          f"use --device cpu")
    check_methods_build(cfg, device if runs_here else "cpu", instantiate=not args.dry_run)
    work_dir = Path(cfg.work_dir).resolve()
    if args.dry_run:
        _print_cells(cells, work_dir)
        return 0
    check_data_available(cfg, cells)
    work_dir.mkdir(parents=True, exist_ok=True)
    cfg.dump(str(work_dir / "grid_config.py"))
    print(f"u2cdr: {len(cells)} cells, work dir {work_dir}", file=sys.stderr)
    summary = run_cells(cells, work_dir, launcher=args.launcher, device=device,
                        custom_imports=custom_import_names(cfg), cell_timeout=cfg.cell_timeout,
                        checkpoint_every=cfg.checkpoint_every, slurm=slurm,
                        wait=not args.no_wait)
    if slurm is not None:
        count = len(summary.submitted)
        print(f"u2cdr: {count} job{'' if count == 1 else 's'} submitted", file=sys.stderr)
    print(f"u2cdr: {summary.line()}", file=sys.stderr)
    for label, error, log in summary.failures:
        print(f"  failed: {label}\n    {error}\n    log: {log}", file=sys.stderr)
    in_flight = summary.counts["queued or running"]
    if in_flight:
        print(f"u2cdr: {in_flight} jobs queued or running; `u2cdr table {work_dir}` shows the "
              f"finished cells, the same `u2cdr run` command collects the rest", file=sys.stderr)
    else:
        _write_and_print_tables(work_dir)
    return 1 if summary.failures else 0


def check_data_available(cfg, cells=()) -> None:
    """Load every dataset once and draw every cell's class split before any cell runs.

    Missing or unreadable data, or a partial/open split that leaves a domain fewer than 2
    classes, stops the run at once instead of failing cells one by one. It also builds the
    on-disk caches in one process, so cell processes only read them. A dataset whose cells
    are all finished in ``cfg.work_dir`` is not loaded: nothing will read it (the resume path).
    """
    import numpy as np

    from u2cdr.data.splits import draw_split
    from u2cdr.engine.grid import resolve_datasets
    from u2cdr.engine.store import cell_state
    from u2cdr.registry import DATASETS, build

    work_dir = Path(cfg.work_dir).resolve()
    finished = {c.dataset for c in cells} - {
        c.dataset for c in cells
        if cell_state(work_dir / c.relative_dir, c.key) not in ("done", "skipped")}
    to_load = [(name, dataset_cfg) for name, dataset_cfg, _ in resolve_datasets(cfg)
               if name not in finished]
    # Methods with backbone.frozen=True run on a frozen_features wrapper of their dataset: its
    # features are extracted here, once, rather than by whichever cell comes first.
    wrappers = {json.dumps(c.dataset_cfg, sort_keys=True, default=str): (c.dataset, c.dataset_cfg)
                for c in cells if c.dataset_cfg.get("type") == "frozen_features"
                and cell_state(work_dir / c.relative_dir, c.key) not in ("done", "skipped")}
    to_load += [(f"{name} ({cfg_['backbone']['type']} frozen)", cfg_)
                for name, cfg_ in wrappers.values() if cfg_ not in [c for _, c in to_load]]
    for name, dataset_cfg in to_load:
        dataset = build(DATASETS, dataset_cfg, f"datasets ({name})")
        started = time.time()
        try:
            loaded = dataset.load()
        except (FileNotFoundError, ConnectionError, OSError, ValueError) as error:
            raise ConfigError(f"datasets ({name}): the data cannot be loaded: {error}") from error
        state = ("read from the cache" if dataset.loaded_from_cache
                 else f"built in {time.time() - started:.1f} s")
        print(f"u2cdr: data {name}: {state} ({dataset.cache_path()})", file=sys.stderr)
        classes: dict[str, np.ndarray] = {}
        for query, gallery, scenario, seed in sorted({(c.query, c.gallery, c.scenario, c.seed)
                                                      for c in cells if c.dataset_cfg == dataset_cfg}):
            for domain in (query, gallery):
                if domain not in classes:
                    classes[domain] = np.unique(np.asarray(loaded[domain]["label"]))
            try:  # the same draw build_pair makes in the cell
                draw_split(classes[query], classes[gallery], scenario, seed, dataset=dataset.name,
                           query=query, gallery=gallery)
            except ValueError as error:
                raise ConfigError(f"datasets ({name}): {error}") from error


def _write_and_print_tables(work_dir: Path) -> None:
    from u2cdr.tables import write_tables

    try:
        written = write_tables(work_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"u2cdr: no tables yet ({error})", file=sys.stderr)
        return
    # all.md is every table rendered in Markdown: print it rather than build the tables twice.
    print(next(path for path in written if path.name == "all.md").read_text(encoding="utf-8"))
    print(f"u2cdr: tables written to {written[0].parent if written else work_dir}", file=sys.stderr)


def command_show(args: argparse.Namespace) -> int:
    cfg, cells = _load(args)
    _print_cells(cells, Path(cfg.work_dir).resolve())
    return 0


def command_table(args: argparse.Namespace) -> int:
    from u2cdr.tables import build_tables, load_records, render_latex, render_markdown
    from u2cdr.tables.ablation import build_ablation_table
    from u2cdr.tables.export import order_from_grid

    if args.layout == "ablation" and args.delta:
        raise ConfigError("--delta works with --layout pairs only")
    records = load_records(Path(args.work_dir))
    if args.layout == "ablation":
        try:
            tables = [build_ablation_table(records, paper=args.paper)]
        except ValueError as error:
            print(f"u2cdr: {error}", file=sys.stderr)
            return EXIT_CONFIG_ERROR
    else:
        # The same order as the tables `u2cdr run` writes: the saved grid's methods and pairs.
        tables = build_tables(records, paper=args.paper, delta=args.delta,
                              **order_from_grid(args.work_dir))
    text = render_markdown(tables) if args.format == "md" else render_latex(tables)
    if args.out:
        Path(args.out).write_text(text)
        print(f"u2cdr: wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def command_list(args: argparse.Namespace) -> int:
    from u2cdr.registry import registered_names

    registry = REGISTRIES[args.kind]
    for name in registered_names(registry):
        cls = registry.module_dict[name]
        summary = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:20s} {summary[0] if summary else ''}")
    return 0


def _command_report(args: argparse.Namespace) -> int:
    from u2cdr.report.command import command_report

    return command_report(args)


def command_convert(args: argparse.Namespace) -> int:
    from u2cdr.data.convert import convert_features

    try:
        summary = convert_features(args.source, args.out, features_key=args.features_key,
                                   labels_key=args.labels_key, label_base=args.label_base,
                                   class_names_file=args.class_names, domain=args.domain)
    except ValueError as error:
        print(f"u2cdr: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    for domain, facts in summary["domains"].items():
        print(f"{domain}: {facts['rows']} rows × {facts['dim']} from {facts['source']}")
    print(f"u2cdr: wrote {summary['out']} (label_base {summary['label_base']})", file=sys.stderr)
    return 0


COMMANDS = {"run": command_run, "show": command_show, "table": command_table,
            "convert": command_convert, "report": _command_report, "list": command_list}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as error:
        print(f"u2cdr: config error: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except (FileNotFoundError, MissingExtraError) as error:
        print(f"u2cdr: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except KeyboardInterrupt:
        print("\nu2cdr: interrupted; finished cells are kept, rerun the same command to go on",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
