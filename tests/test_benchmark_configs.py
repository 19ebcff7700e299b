"""Every grid config under benchmarks/ parses, expands, and names only registered components."""
from __future__ import annotations

from pathlib import Path

import pytest

from u2cdr.engine.config import load_grid_config
from u2cdr.engine.grid import check_methods_build, expand_grid

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
GRIDS = sorted(p for p in BENCHMARKS.rglob("*.py")
               if not {"_base_", "perf", "analysis"} & set(p.parts))  # scripts, not grids


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: str(p.relative_to(BENCHMARKS)))
def test_grid_config_expands_and_resolves_every_type(path: Path) -> None:
    cfg = load_grid_config(path)
    cells = expand_grid(cfg)
    assert cells, f"{path} expands to no cell"
    assert len({c.key for c in cells}) == len(cells)
    check_methods_build(cfg, "cpu", instantiate=False)
