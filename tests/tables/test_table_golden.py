"""Generated Markdown and LaTeX of the fake runs tree against committed golden files.

The golden files were generated once and checked by hand (see the numbers worked out in
``test_table_layout.py``). To regenerate after an intended change of the output:

    U2CDR_REGEN_GOLDEN=1 python -m pytest tests/tables/test_table_golden.py

The run rewrites ``tests/tables/golden/*`` and still fails, so a regenerated golden is never
taken for a pass; review ``git diff tests/tables/golden`` and rerun without the variable.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from u2cdr.tables import write_tables

GOLDEN_DIR = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("U2CDR_REGEN_GOLDEN") == "1"
TABLE_NAMES = ["digits_closed", "digits_open", "office31_closed", "office31_open"]
VARIANTS = {"tables": {}, "tables_paper_delta": {"paper": True, "delta": True}}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_written_tables_match_golden_files(fake_work_dir: Path, tmp_path: Path,
                                           variant: str) -> None:
    written = write_tables(fake_work_dir, tmp_path, **VARIANTS[variant])

    expected_names = [f"{name}{suffix}" for name in [*TABLE_NAMES, "all"]
                      for suffix in (".md", ".tex")]
    assert [path.name for path in written] == expected_names
    for suffix in (".md", ".tex"):
        # all.* is exactly the per-table files one after another.
        parts = [(tmp_path / f"{name}{suffix}").read_text(encoding="utf-8").rstrip("\n")
                 for name in TABLE_NAMES]
        combined = (tmp_path / f"all{suffix}").read_text(encoding="utf-8")
        assert combined == "\n\n".join(parts) + "\n"

        golden = GOLDEN_DIR / f"{variant}{suffix}"
        if REGENERATE:
            golden.write_text(combined, encoding="utf-8")
            continue
        expected = golden.read_text(encoding="utf-8")
        diff = "".join(difflib.unified_diff(expected.splitlines(True), combined.splitlines(True),
                                            fromfile=str(golden), tofile="generated"))
        assert combined == expected, f"output differs from {golden}:\n{diff}"
    if REGENERATE:
        pytest.fail(f"rewrote {GOLDEN_DIR}/{variant}.*: review the diff, then rerun without "
                    f"U2CDR_REGEN_GOLDEN")
