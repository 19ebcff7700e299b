"""``u2cdr report WORK_DIR``: the arguments and the command (wired into ``u2cdr.cli``)."""
from __future__ import annotations

import argparse
import sys

# Mirrors of u2cdr.report.build's defaults: building the CLI parser must not import the report
# machinery (matplotlib, torch through the engine) just to print --help.
DEFAULT_TOP_K = 5
DEFAULT_QUERIES = 6

FORMAT_CHOICES = {"md": ("md",), "latex": ("latex",), "both": ("md", "latex")}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``report`` sub-command's arguments."""
    parser.add_argument("work_dir", help="a grid's work dir (the one holding runs/)")
    parser.add_argument("--format", choices=sorted(FORMAT_CHOICES), default="both",
                        help="report.md, report.tex or both (default)")
    parser.add_argument("--top-k", type=_positive_int, default=DEFAULT_TOP_K,
                        help=f"gallery images per query in retrieval figures (default "
                             f"{DEFAULT_TOP_K})")
    parser.add_argument("--queries", type=_positive_int, default=DEFAULT_QUERIES,
                        help=f"queries per retrieval figure, one per class (default "
                             f"{DEFAULT_QUERIES})")
    parser.add_argument("--methods", nargs="+", metavar="METHOD",
                        help="grid methods that get retrieval and t-SNE figures (default: every "
                             "method that trains)")
    parser.add_argument("--out", help="the report folder (default WORK_DIR/report)")


def command_report(args: argparse.Namespace) -> int:
    """Write the report; print where. Config errors propagate to ``u2cdr.cli.main`` (exit 2)."""
    from u2cdr.report.build import write_report

    written = write_report(args.work_dir, args.out, formats=FORMAT_CHOICES[args.format],
                           top_k=args.top_k, queries=args.queries, methods=args.methods,
                           log=True)
    for path in written.documents:
        print(f"u2cdr: wrote {path}", file=sys.stderr)
    print(f"u2cdr: {len(written.figures)} figure files in "
          f"{written.documents[0].parent / 'figures'}", file=sys.stderr)
    for note in written.notes:
        print(f"  not drawn: {note}", file=sys.stderr)
    return 0
