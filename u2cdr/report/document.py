"""The report as one document, Markdown or LaTeX: tables, figures, methods and environment.

The content is gathered once (``ReportContent``) and rendered twice, so the two formats never
disagree. Tables are ``u2cdr.tables``' own (the same cells, bold and footnotes as
``u2cdr table``); method sections show each method's configuration (``method_cfg``) and the
readings it took where its paper is silent (``method_info.gaps`` / ``gap_decisions``), since a
number cannot be judged without them; the environment lists what produced the records
(``provenance``).
"""
from __future__ import annotations

import json
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from u2cdr.tables.layout import Table
from u2cdr.tables.render import latex_escape, latex_table, markdown_escape, markdown_table

# Where a record keeps the readings a method took where its paper is silent.
GAP_FIELDS = ("gaps", "gap_decisions")
FIGURE_SECTIONS = {
    "averages": "Averages per scenario",
    "retrieval": "Top-k retrievals (the UEM paper's Figure 4)",
    "tsne": "t-SNE of both domains, before and after training",
}
# LaTeX stops with "Too many unprocessed floats" past 18 pending floats: flush every few.
FLOATS_PER_PAGE_FLUSH = 8
# Greek capitals LaTeX has as commands; the others look like Latin capitals.
_LATEX_GREEK_CAPITALS = frozenset({"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma",
                                   "Upsilon", "Phi", "Psi", "Omega"})
_LATEX_SYMBOLS = {"§": r"\S{}", "²": r"$^2$", "³": r"$^3$", "≥": r"$\geq$", "≤": r"$\leq$",
                  "×": r"$\times$", "·": r"$\cdot$", "≈": r"$\approx$", "∈": r"$\in$",
                  "…": r"\ldots{}", "’": "'", "‘": "`", "“": "``", "”": "''", "′": "'",
                  "∞": r"$\infty$", "√": r"$\surd$", "≠": r"$\neq$", "°": r"$^\circ$"}


@dataclass(frozen=True)
class ReportFigure:
    """A drawn figure: ``stem`` relative to the report folder (``figures/<name>``, no suffix)."""

    kind: str
    stem: str
    caption: str


@dataclass(frozen=True)
class MethodSummary:
    """What a reader needs to judge one method's numbers, over all its records.

    ``configs`` and each gap's readings are distinct values with how many records hold them:
    one entry each when every cell ran the same configuration.
    """

    name: str
    method_type: str
    family: str
    done: int
    skipped: int
    configs: tuple[tuple[str, int], ...]
    gaps: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
    flags: tuple[tuple[str, int], ...]
    uses_labels: bool = False


@dataclass(frozen=True)
class EnvironmentRow:
    """One provenance field, one of its values, and how many records carry that value."""

    field: str
    value: str
    records: int


@dataclass
class ReportContent:
    """Everything the document shows, format-free."""

    title: str
    source: str
    record_count: int
    tables: list[Table]
    methods: list[MethodSummary]
    environment: list[EnvironmentRow]
    figures: list[ReportFigure] = field(default_factory=list)
    table_notes: list[str] = field(default_factory=list)
    figure_notes: list[str] = field(default_factory=list)


# ----- gathering ----------------------------------------------------------------------------------
def _counted(values: Iterable[str]) -> tuple[tuple[str, int], ...]:
    """Distinct values with their counts, in order of first appearance."""
    counts = Counter()
    order = []
    for value in values:
        if value not in counts:
            order.append(value)
        counts[value] += 1
    return tuple((value, counts[value]) for value in order)


def recorded_gaps(record: dict) -> dict[str, str]:
    """A record's GAP readings as ``{decision: text}``.

    UEM records them under ``method_info.gaps``, the other methods under
    ``method_info.gap_decisions``; both are read. A non-text reading (a switch such as
    ``bank_renormalize: true``) is shown as JSON.
    """
    info = record.get("method_info") or {}
    readings: dict[str, str] = {}
    for field_name in GAP_FIELDS:
        for key, value in (info.get(field_name) or {}).items():
            readings[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return readings


def summarise_methods(records: list[dict]) -> list[MethodSummary]:
    """One summary per grid method name, in the tables' row order (oracles last, then by
    family and name)."""
    by_method: dict[str, list[dict]] = {}
    for record in records:
        by_method.setdefault(str(record["method"]), []).append(record)
    summaries = []
    for name, method_records in by_method.items():
        done = [r for r in method_records if r.get("status") == "done"]
        described = done or method_records
        gap_texts: dict[str, list[str]] = {}
        for record in done:
            for key, reading in recorded_gaps(record).items():
                gap_texts.setdefault(key, []).append(reading)
        method_cfg = described[0].get("method_cfg")
        method_type = method_cfg.get("type", name) if isinstance(method_cfg, dict) else name
        summaries.append(MethodSummary(
            name=name, method_type=str(method_type),
            family=str(described[0].get("family") or "other"),
            done=len(done), skipped=len(method_records) - len(done),
            configs=_counted(json.dumps(r.get("method_cfg"), indent=2, sort_keys=True,
                                        ensure_ascii=False) for r in described),
            gaps=tuple((key, _counted(texts)) for key, texts in sorted(gap_texts.items())),
            flags=_counted(f"{key}={value}" for r in done
                           for key, value in sorted((r.get("flags") or {}).items())),
            uses_labels=any(bool(r.get("uses_labels")) for r in method_records)))
    return sorted(summaries, key=lambda s: (s.uses_labels, s.family.casefold(), s.name.casefold()))


def _provenance_fields(record: dict) -> dict[str, Any]:
    """The provenance of one record (``engine/provenance.py`` plus device and determinism)."""
    env = record.get("env") or {}
    determinism = record.get("determinism") or {}
    fields = {"u2cdr version": record.get("version"), "git commit": record.get("git_commit"),
              "python": env.get("python"), "platform": env.get("platform"),
              "host": env.get("host"), "device": record.get("device"),
              "torch threads": determinism.get("torch_threads"),
              "determinism": determinism.get("statement")}
    for library, version in sorted((env.get("versions") or {}).items()):
        fields[library] = version
    return fields


def summarise_environment(records: list[dict]) -> list[EnvironmentRow]:
    """Each provenance field's distinct values with their record counts ('not recorded': None)."""
    values: dict[str, list[str]] = {}
    for record in records:
        for name, value in _provenance_fields(record).items():
            values.setdefault(name, []).append("not recorded" if value is None else str(value))
    return [EnvironmentRow(name, value, count) for name, texts in values.items()
            for value, count in _counted(texts)]


# ----- Markdown -----------------------------------------------------------------------------------
def _markdown_method(summary: MethodSummary) -> list[str]:
    lines = [f"### {markdown_escape(summary.name)}", "",
             f"Registered type `{summary.method_type}`, family {markdown_escape(summary.family)}; "
             f"{summary.done} finished cell(s)"
             + (f", {summary.skipped} skipped" if summary.skipped else "") + ".", ""]
    if summary.flags:
        lines += ["Flags: " + ", ".join(f"`{flag}` ({count})" for flag, count in summary.flags),
                  ""]
    several = len(summary.configs) > 1
    for config, count in summary.configs:
        heading = f"Configuration (`method_cfg`{f', {count} record(s)' if several else ''}):"
        lines += [heading, "", "```json", config, "```", ""]
    if summary.gaps:
        lines += ["GAP decisions (`method_info.gaps` / `gap_decisions`: where the paper is "
                  "silent, the reading this implementation took):", ""]
        for key, readings in summary.gaps:
            if len(readings) == 1:
                lines.append(f"- **{markdown_escape(key)}**: {markdown_escape(readings[0][0])}")
            else:
                lines.append(f"- **{markdown_escape(key)}** (differs between cells):")
                lines += [f"    - {markdown_escape(text)} ({count} record(s))"
                          for text, count in readings]
        lines.append("")
    else:
        lines += ["GAP decisions: none recorded.", ""]
    return lines


def _figure_groups(figures: list[ReportFigure]) -> list[tuple[str, list[ReportFigure]]]:
    return [(kind, [figure for figure in figures if figure.kind == kind])
            for kind in FIGURE_SECTIONS if any(figure.kind == kind for figure in figures)]


def render_markdown_report(content: ReportContent) -> str:
    """The whole report as Markdown; figures are relative links to the PNGs."""
    lines = [f"# {markdown_escape(content.title)}", "",
             f"Built from {content.record_count} record(s) under `{content.source}/runs` "
             f"(`result.json` and `features.npz` of each cell).", "",
             "## Contents", "", "1. [Results](#results)", "2. [Figures](#figures)",
             "3. [Methods: configuration and GAP decisions](#methods)",
             "4. [Environment](#environment)", "",
             '<a id="results"></a>', "", "## 1. Results", ""]
    for table in content.tables:
        lines += [markdown_table(table), ""]
    lines += [f"- {markdown_escape(note)}" for note in content.table_notes]
    lines += ["", '<a id="figures"></a>', "", "## 2. Figures", ""]
    for kind, figures in _figure_groups(content.figures):
        lines += [f"### {FIGURE_SECTIONS[kind]}", ""]
        for figure in figures:
            lines += [f"![{FIGURE_SECTIONS[kind]}]({figure.stem}.png)", "",
                      f"*{markdown_escape(figure.caption)}* ([PDF]({figure.stem}.pdf))", ""]
    if not content.figures:
        lines += ["No figure was drawn.", ""]
    if content.figure_notes:
        lines += ["Figures not drawn:", ""]
        lines += [f"- {markdown_escape(note)}" for note in content.figure_notes]
        lines.append("")
    lines += ['<a id="methods"></a>', "", "## 3. Methods: configuration and GAP decisions", ""]
    for summary in content.methods:
        lines += _markdown_method(summary)
    lines += ['<a id="environment"></a>', "", "## 4. Environment", "",
              "| Field | Value | Records |", "|---|---|---:|"]
    lines += [f"| {markdown_escape(row.field)} | {markdown_escape(row.value)} | {row.records} |"
              for row in content.environment]
    return "\n".join(lines) + "\n"


# ----- LaTeX --------------------------------------------------------------------------------------
def _latex_character(character: str) -> str:
    """A non-ASCII character as pdfLaTeX can typeset it (Greek and common signs as math)."""
    if character in _LATEX_SYMBOLS:
        return _LATEX_SYMBOLS[character]
    name = unicodedata.name(character, "")
    for prefix, capital in (("GREEK SMALL LETTER ", False), ("GREEK CAPITAL LETTER ", True)):
        if name.startswith(prefix):
            letter = name[len(prefix):].lower().replace("lamda", "lambda").replace("final ", "var")
            if capital:
                letter = letter.capitalize()
                return rf"$\{letter}$" if letter in _LATEX_GREEK_CAPITALS else letter[0]
            return "o" if letter == "omicron" else rf"$\{letter}$"
    return character


def latex_text(text: str) -> str:
    """``text`` safe in LaTeX text mode, non-ASCII characters mapped for pdfLaTeX."""
    escaped = latex_escape(text)
    return "".join(_latex_character(c) if ord(c) > 127 else c for c in escaped)


def _latex_verbatim(text: str) -> str:
    """A verbatim block; non-ASCII is spelt out (verbatim cannot hold it under pdfLaTeX)."""
    ascii_text = "".join(c if ord(c) < 128 else f"<U+{ord(c):04X}>" for c in text)
    return "\\begin{verbatim}\n" + ascii_text + "\n\\end{verbatim}"


def _latex_method(summary: MethodSummary) -> list[str]:
    lines = [rf"\subsection{{{latex_text(summary.name)}}}",
             latex_text(f"Registered type {summary.method_type}, family {summary.family}; "
                        f"{summary.done} finished cell(s)"
                        + (f", {summary.skipped} skipped" if summary.skipped else "") + "."),
             ""]
    if summary.flags:
        lines += [latex_text("Flags: " + ", ".join(f"{flag} ({count})"
                                                   for flag, count in summary.flags) + "."), ""]
    several = len(summary.configs) > 1
    for config, count in summary.configs:
        counted = f", {count} record(s)" if several else ""
        lines += [latex_text(f"Configuration (method_cfg{counted}):"), _latex_verbatim(config), ""]
    if not summary.gaps:
        return lines + ["GAP decisions: none recorded.", ""]
    lines += [latex_text("GAP decisions (method_info.gaps / gap_decisions: where the paper is "
                         "silent, the reading this implementation took):"), r"\begin{itemize}"]
    for key, readings in summary.gaps:
        if len(readings) == 1:
            lines.append(rf"\item \textbf{{{latex_text(key)}}}: {latex_text(readings[0][0])}")
        else:
            lines.append(rf"\item \textbf{{{latex_text(key)}}} (differs between cells):"
                         r" \begin{itemize}")
            lines += [rf"\item {latex_text(text)} ({count} record(s))" for text, count in readings]
            lines.append(r"\end{itemize}")
    return lines + [r"\end{itemize}", ""]


def render_latex_report(content: ReportContent) -> str:
    """The whole report as a standalone pdfLaTeX document; figures are the PDFs."""
    lines = [r"\documentclass[10pt]{article}",
             r"\usepackage[margin=2cm]{geometry}",
             r"\usepackage[utf8]{inputenc}",
             r"\usepackage[T1]{fontenc}",
             r"\usepackage{booktabs}",
             r"\usepackage{graphicx}",
             r"\usepackage{amssymb}",
             rf"\title{{{latex_text(content.title)}}}",
             r"\date{}",
             r"\begin{document}",
             r"\maketitle",
             latex_text(f"Built from {content.record_count} record(s) under {content.source}/runs "
                        f"(result.json and features.npz of each cell)."),
             r"\section{Results}"]
    floats = 0
    for table in content.tables:
        lines += [latex_table(table), ""]
        floats += 1
        if floats % FLOATS_PER_PAGE_FLUSH == 0:
            lines.append(r"\clearpage")
    if content.table_notes:
        lines += [r"\begin{itemize}"] + [rf"\item {latex_text(n)}" for n in content.table_notes]
        lines.append(r"\end{itemize}")
    lines += [r"\clearpage", r"\section{Figures}"]
    for kind, figures in _figure_groups(content.figures):
        lines.append(rf"\subsection{{{latex_text(FIGURE_SECTIONS[kind])}}}")
        for figure in figures:
            lines += [r"\begin{figure}[htbp]", r"\centering",
                      rf"\includegraphics[width=\linewidth,height=0.8\textheight,"
                      rf"keepaspectratio]{{{figure.stem}.pdf}}",
                      rf"\caption{{{latex_text(figure.caption)}}}", r"\end{figure}"]
            floats += 1
            if floats % FLOATS_PER_PAGE_FLUSH == 0:
                lines.append(r"\clearpage")
    if not content.figures:
        lines.append("No figure was drawn.")
    if content.figure_notes:
        lines += ["", "Figures not drawn:", r"\begin{itemize}"]
        lines += [rf"\item {latex_text(note)}" for note in content.figure_notes]
        lines.append(r"\end{itemize}")
    lines += [r"\clearpage", r"\section{Methods: configuration and GAP decisions}"]
    for summary in content.methods:
        lines += _latex_method(summary)
    lines += [r"\section{Environment}", r"\begin{tabular}{p{0.18\linewidth}p{0.62\linewidth}r}",
              r"\toprule", r"Field & Value & Records \\", r"\midrule"]
    lines += [rf"{latex_text(row.field)} & {latex_text(row.value)} & {row.records} \\"
              for row in content.environment]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{document}"]
    return "\n".join(lines) + "\n"
