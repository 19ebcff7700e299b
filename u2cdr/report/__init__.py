"""A work dir → one report: every table, figures from the cells' saved features, each method's
configuration and GAP decisions, and the environment, as Markdown and LaTeX.

    from u2cdr.report import write_report
    write_report("work_dirs/default")      # work_dirs/default/report/report.{md,tex}, figures/

``u2cdr report WORK_DIR`` is the same from the shell (``command.py``).
"""
from typing import Any


def __getattr__(name: str) -> Any:
    """``write_report`` / ``ReportFiles`` on first use: the CLI imports this package to build
    its parser, which must stay light (the report machinery pulls in matplotlib and torch)."""
    if name in ("ReportFiles", "write_report"):
        from u2cdr.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'u2cdr.report' has no attribute {name!r}")


__all__ = ["ReportFiles", "write_report"]
