"""Tables → Markdown (pandas ``to_markdown``, i.e. tabulate) and LaTeX (booktabs).

Markdown marks the best number ``**x**`` and the second best ``<u>x</u>``; footnote letters
are ``<sup>a</sup>``. LaTeX is a ``table`` float with ``\\toprule/\\midrule/\\bottomrule``,
``\\textbf``/``\\underline`` and a ``\\caption``, ready to ``\\input`` (needs
``\\usepackage{booktabs}``). The LaTeX is written by hand rather than through
``Styler.to_latex``: per-part emphasis inside "mAP / Acc" cells, footnote markers and rules
between row groups are plain string work, and every character is escaped in one place.
"""
from __future__ import annotations

import pandas as pd

from u2cdr.tables.cells import Cell, Part
from u2cdr.tables.labels import SCENARIO_NAMES, dataset_name
from u2cdr.tables.layout import Table

_MARKDOWN_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "*": "\\*", "<": "&lt;"})
_LATEX_ESCAPES = str.maketrans({
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "±": r"$\pm$", "→": r"$\rightarrow$",
    "–": "--", "—": "---", "−": "$-$", "Δ": r"$\Delta$",
})


def latex_escape(text: str) -> str:
    """``text`` safe in LaTeX text mode; the Unicode signs tables use become math."""
    return text.translate(_LATEX_ESCAPES)


def markdown_escape(text: str) -> str:
    """``text`` safe inside a Markdown table cell."""
    return text.translate(_MARKDOWN_ESCAPES)


def _markdown_part(part: Part) -> str:
    text = markdown_escape(part.text)
    if part.emphasis == "best":
        return f"**{text}**"
    if part.emphasis == "second":
        return f"<u>{text}</u>"
    return text


def _markdown_cell(cell: Cell) -> str:
    text = " / ".join(_markdown_part(part) for part in cell.parts)
    return f"{text}<sup>{','.join(cell.markers)}</sup>" if cell.markers else text


def _latex_part(part: Part) -> str:
    text = latex_escape(part.text)
    if part.emphasis == "best":
        return rf"\textbf{{{text}}}"
    if part.emphasis == "second":
        return rf"\underline{{{text}}}"
    return text


def _latex_cell(cell: Cell) -> str:
    text = " / ".join(_latex_part(part) for part in cell.parts)
    return rf"{text}\textsuperscript{{{','.join(cell.markers)}}}" if cell.markers else text


def _title(table: Table) -> str:
    return (f"{dataset_name(table.dataset)} — {SCENARIO_NAMES[table.scenario]} "
            f"(protocol {table.protocol})")


def group_name(group: str) -> str:
    """The block a row belongs to as a reader names it: the family, 'oracle', 'paper'."""
    kind, _, family = group.partition("/")
    if kind == "oracle":
        return "oracle (uses labels)" if family in ("", "oracle") else f"{family} (uses labels)"
    return family or kind


def _family_column(groups: list[str]) -> list[str] | None:
    """Each block's name on its first row (blank below it); None without two method families.

    Markdown has no rules between rows, so the family grouping LaTeX draws as rules between
    row groups is spelled out in a first column, as the paper's tables label their baseline
    groups. Layouts whose blocks are not families (the ablation: ours, paper) keep theirs.
    """
    if len({group for group in groups if "/" in group}) < 2:
        return None
    return [group_name(group) if index == 0 or group != groups[index - 1] else ""
            for index, group in enumerate(groups)]


def markdown_table(table: Table) -> str:
    """One table: heading, pandoc-style ``Table:`` caption, the grid, then its notes."""
    family = _family_column(list(table.row_groups))
    rows = [[_markdown_cell(label), *map(_markdown_cell, row)]
            for label, row in zip(table.row_labels, table.cells)]
    columns = ["Method", *map(markdown_escape, table.columns)]
    if family is not None:
        rows = [[markdown_escape(name), *row] for name, row in zip(family, rows)]
        columns = ["Family", *columns]
    body = pd.DataFrame(rows, columns=columns)
    grid = body.to_markdown(index=False, disable_numparse=True,
                            colalign=("left",) * (len(columns) - len(table.columns))
                            + ("center",) * len(table.columns))
    notes = [f"- {f'<sup>{note.marker}</sup> ' if note.marker else ''}{markdown_escape(note.text)}"
             for note in table.footnotes]
    blocks = [f"### {_title(table)}", f"Table: {markdown_escape(table.caption)}", grid]
    if notes:
        blocks.append("\n".join(notes))
    return "\n\n".join(blocks)


def latex_table(table: Table) -> str:
    """One ``table`` float: booktabs rules, a rule between row groups, notes under it."""
    lines = [
        f"% u2cdr table {table.name}: {latex_escape(_title(table))}; "
        r"needs \usepackage{booktabs}",
        r"\begin{table}[htbp]",
        r"\centering",
        r"\small",
        rf"\caption{{{latex_escape(table.caption)}}}",
        rf"\label{{tab:u2cdr-{table.name.replace('_', '-')}}}",
        rf"\begin{{tabular}}{{l{'c' * len(table.columns)}}}",
        r"\toprule",
        " & ".join(["Method", *map(latex_escape, table.columns)]) + r" \\",
        r"\midrule",
    ]
    previous_group = None
    for label, row, group in zip(table.row_labels, table.cells, table.row_groups):
        if previous_group is not None and group != previous_group:
            lines.append(r"\midrule")
        previous_group = group
        lines.append(" & ".join([_latex_cell(label), *map(_latex_cell, row)]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.footnotes:
        lines += [r"\par\smallskip", r"{\footnotesize"]
        lines += [(rf"\textsuperscript{{{note.marker}}}~" if note.marker else "")
                  + latex_escape(note.text) + r"\par" for note in table.footnotes]
        lines.append("}")
    lines.append(r"\end{table}")
    return "\n".join(lines)


def render_markdown(tables: list[Table]) -> str:
    """All ``tables`` as one Markdown document."""
    return "\n\n".join(markdown_table(table) for table in tables) + "\n"


def render_latex(tables: list[Table]) -> str:
    """All ``tables`` as LaTeX floats, one after another."""
    return "\n\n".join(latex_table(table) for table in tables) + "\n"
