"""Running grids: user methods via custom_imports, failures recorded, interruptions resumable."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from u2cdr.engine.config import load_grid_config
from u2cdr.engine.grid import expand_grid
from u2cdr.engine.runner import run_cells
from u2cdr.methods.base import Method
from u2cdr.registry import METHODS

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "benchmarks" / "_base_"

USER_METHOD = '''
"""A user's own method, in a file outside the u2cdr package."""
import numpy as np
import torch

from u2cdr.methods.base import Method
from u2cdr.registry import METHODS


@METHODS.register_module(name="my_pca")
class MyPCA(Method):
    """PCA fitted on both domains' pixels."""

    family = "user"

    def __init__(self, dim: int = 16, device: str = "cpu"):
        self.dim = dim
        self.components = None

    def _pixels(self, domain):
        return torch.cat([x.flatten(1) for x, _ in domain.eval_loader()]).numpy()

    def fit(self, pair, work_dir):
        pixels = np.concatenate([self._pixels(pair.query), self._pixels(pair.gallery)])
        centred = pixels - pixels.mean(0)
        self.mean = pixels.mean(0)
        self.components = np.linalg.svd(centred, full_matrices=False)[2][: self.dim]

    def embed(self, domain):
        return ((self._pixels(domain) - self.mean) @ self.components.T).astype(np.float32)
'''


def test_a_user_method_joins_a_grid_through_custom_imports(tmp_path: Path, shared_cache: str) -> None:
    user_dir = tmp_path / "my_project"
    user_dir.mkdir()
    (user_dir / "my_pca.py").write_text(USER_METHOD)
    config = user_dir / "grid.py"
    config.write_text(textwrap.dedent(f"""\
        _base_ = ['{BASE}/datasets/digits.py']
        custom_imports = dict(imports=['my_pca'], allow_failed_imports=False)
        methods = [dict(type='my_pca', dim=8)]
        datasets = [dict(type='digits', pairs=[('uci', 'mnist')], cache_dir='{shared_cache}')]
        scenarios = ['closed', 'open']
        seeds = [2024]
        work_dir = '{tmp_path / "work"}'
        """))
    command = [sys.executable, "-m", "u2cdr.cli", "run", str(config)]
    env = {**os.environ, "U2CDR_NO_PROGRESS": "1"}
    first = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    results = sorted((tmp_path / "work" / "runs").rglob("result.json"))
    records = [json.loads(p.read_text()) for p in results]
    assert sorted(r["scenario"] for r in records) == ["closed", "open"]
    for record in records:
        assert record["status"] == "done" and record["method"] == "my_pca"
        assert 0 < record["metrics"]["map_all"] <= 100
    assert "open_set_acc" in next(r for r in records if r["scenario"] == "open")["metrics"]
    assert (tmp_path / "work" / "tables" / "digits_closed.md").exists()
    stamps = [p.stat().st_mtime_ns for p in results]
    again = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 done" in again.stderr
    assert [p.stat().st_mtime_ns for p in results] == stamps  # nothing was run twice


class _Flaky(Method):
    """Test method: pixel features; fails or is interrupted on chosen seeds."""

    fits: list[int] = []
    fail_seed: int | None = None
    interrupt_seed: int | None = None

    def __init__(self, device: str = "cpu") -> None:
        pass

    def fit(self, pair, work_dir) -> None:
        seed = int(pair.split["seed"])
        if seed == _Flaky.interrupt_seed:
            raise KeyboardInterrupt
        if seed == _Flaky.fail_seed:
            raise RuntimeError("loss exploded on purpose")
        _Flaky.fits.append(seed)

    def embed(self, domain) -> np.ndarray:
        import torch

        return torch.cat([x.flatten(1) for x, _ in domain.eval_loader()]).numpy()


@pytest.fixture
def flaky_method():
    METHODS.register_module(name="flaky_for_tests", module=_Flaky, force=True)
    _Flaky.fits, _Flaky.fail_seed, _Flaky.interrupt_seed = [], None, None
    yield _Flaky
    METHODS.module_dict.pop("flaky_for_tests", None)


def test_failures_are_recorded_and_interruptions_lose_nothing(tmp_path: Path, shared_cache: str,
                                                              flaky_method) -> None:
    cfg = load_grid_config(REPO / "benchmarks" / "default.py", {
        "methods": ["flaky_for_tests"], "scenarios": ["closed"], "seeds": [1, 2, 3],
        "digits.pairs": [("uci", "mnist")], "digits.cache_dir": shared_cache})
    cells = expand_grid(cfg)
    work = tmp_path / "work"

    flaky_method.fail_seed, flaky_method.interrupt_seed = 2, 3
    with pytest.raises(KeyboardInterrupt):
        run_cells(cells, work, launcher="inline")
    assert flaky_method.fits == [1]
    status = json.loads((work / cells[1].relative_dir / "status.json").read_text())
    assert status["state"] == "failed" and "loss exploded on purpose" in status["error"]
    assert not (work / cells[2].relative_dir / "lock").exists()  # the claim was released

    flaky_method.fail_seed, flaky_method.interrupt_seed = None, None
    summary = run_cells(cells, work, launcher="inline")
    assert flaky_method.fits == [1, 2, 3]  # seed 1 was not run again
    assert summary.counts["done"] == 3 and not summary.failures


class _ClosedOnly(_Flaky):
    """Test method that declares it cannot run partial or open cells."""

    supports = frozenset({"closed"})
    family = "test-family"


def test_unsupported_scenarios_are_skipped_with_a_recorded_reason(tmp_path: Path) -> None:
    METHODS.register_module(name="closed_only_for_tests", module=_ClosedOnly, force=True)
    _ClosedOnly.fits = []
    try:
        cfg = load_grid_config(REPO / "benchmarks" / "default.py", {
            "methods": ["closed_only_for_tests"], "scenarios": ["partial", "open"],
            "digits.pairs": [("uci", "mnist")]})
        summary = run_cells(expand_grid(cfg), tmp_path, launcher="inline")
    finally:
        METHODS.module_dict.pop("closed_only_for_tests", None)
    assert summary.counts["skipped"] == 2 and _ClosedOnly.fits == []
    records = [json.loads(p.read_text()) for p in tmp_path.rglob("result.json")]
    assert {r["scenario"] for r in records} == {"partial", "open"}
    for record in records:
        assert record["status"] == "skipped" and record["family"] == "test-family"
        assert "supports ['closed'], not" in record["skip_reason"]
