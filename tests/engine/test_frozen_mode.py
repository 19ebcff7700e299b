"""Frozen-feature mode end to end: every method on .mat, .npz and parquet feature files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from u2cdr.cli import main
from u2cdr.data.convert import convert_features
from u2cdr.engine.frozen_mode import feature_method_cfg, needs_images_reason
from u2cdr.registry import METHODS, ConfigError, import_all_components

REPO = Path(__file__).resolve().parents[2]
METHOD_NAMES = ["pretrained", "instdisc", "uem", "ucdir", "protoot", "coda", "pcs", "cds", "darl",
                "dn2a", "dgdir"]


def _write_domains(root: Path, kind: str) -> Path:
    """Two domains of 6 overlapping classes (8 rows each) in 8-d, the second shifted."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(6, 8)) * 1.5
    root.mkdir(parents=True)
    for shift, domain in enumerate(("art", "clipart")):
        labels = np.repeat(np.arange(6), 8)
        features = centres[labels] + 2.0 * shift + rng.normal(size=(len(labels), 8)) * 1.0
        if kind == "mat":  # MATLAB: D x N, 1-based labels
            scipy.io.savemat(root / f"{domain}.mat", {"feas": features.T, "label": labels[:, None] + 1})
        else:
            np.savez(root / f"{domain}.npz", fts=features, y=labels)
    return root


def _grid(tmp_path: Path) -> Path:
    parquet = tmp_path / "office.parquet"
    convert_features(_write_domains(tmp_path / "npz_for_parquet", "npz"), parquet)
    fast = dict(epochs=1, batch_size=16)
    config = tmp_path / "grid.py"
    config.write_text(f"""
_base_ = [{str(REPO / 'benchmarks/_base_/methods/features.py')!r}]
mat = dict(type='features', root={str(_write_domains(tmp_path / 'mat', 'mat'))!r},
           source_name='toy MAT features', pairs=[('art', 'clipart')])
npz = dict(type='features', root={str(_write_domains(tmp_path / 'npz', 'npz'))!r},
           pairs=[('art', 'clipart')])
pq = dict(type='features', data_files={str(parquet)!r}, pairs=[('art', 'clipart')])
methods = {METHOD_NAMES!r}
datasets = ['mat', 'npz', 'pq']
scenarios = ['closed', 'partial', 'open']
seeds = [0]
evaluation = dict(type='uem')
method_library = dict(
    instdisc={fast!r}, ucdir=dict({fast!r}, warmup_epochs=0), protoot=dict({fast!r}, instance_warmup_epochs=0),
    coda=dict({fast!r}, num_clusters=6), pcs={fast!r}, cds={fast!r}, darl={fast!r}, dn2a={fast!r},
    uem=dict(idse_epochs=1, cdsm_epochs=1, batch_size=16, elbow_k_min=2, elbow_k_max=12, elbow_k_step=2),
)
""")
    return config


def test_every_method_runs_on_mat_npz_and_parquet_features_in_every_scenario(tmp_path, capsys) -> None:
    config = _grid(tmp_path)
    work_dir = tmp_path / "work"
    assert main(["run", str(config), "--work-dir", str(work_dir), "--launcher", "inline"]) == 0
    records = [json.loads(path.read_text()) for path in work_dir.glob("runs/**/result.json")]
    assert len(records) == 3 * 3 * len(METHOD_NAMES)
    for record in records:
        if record["method"] == "dgdir":
            assert record["status"] == "skipped"
            assert "needs images" in record["skip_reason"]
            continue
        assert record["status"] == "done", record["method"]
        assert record["inputs"]["kind"] == "features" and record["inputs"]["feature_dim"] == 8
        assert record["feature_mode"]["trained_on"].startswith("8-d vectors")
        assert record["method_info"]["backbone"]["type"] == "identity"
        assert 0.0 <= record["metrics"]["map_all"] <= 100.0
        assert ("open_set_acc" in record["metrics"]) == (record["scenario"] == "open")
    closed = {r["dataset"]: r for r in records if r["method"] == "pretrained" and r["scenario"] == "closed"}
    # The same vectors whatever the file format (.mat transposed with 1-based labels, .npz,
    # parquet): one content fingerprint, one result.
    assert closed["mat"]["metrics"] == closed["npz"]["metrics"] == closed["pq"]["metrics"]
    assert closed["mat"]["dataset_fingerprint"] == closed["npz"]["dataset_fingerprint"]
    table = (work_dir / "tables" / "mat_closed.md").read_text()
    assert "mat on toy MAT features, closed-set" in table
    assert "| dgdir" in table and "n/a" in table


def test_a_trained_method_moves_its_features_off_the_inputs(tmp_path) -> None:
    config = _grid(tmp_path)
    work_dir = tmp_path / "work"
    assert main(["run", str(config), "--work-dir", str(work_dir), "--launcher", "inline",
                 "--cfg-options", "methods=[pretrained,instdisc]", "datasets=[npz]",
                 "scenarios=[closed]"]) == 0
    by_method = {json.loads(p.read_text())["method"]: json.loads(p.read_text())
                 for p in work_dir.glob("runs/**/result.json")}
    assert by_method["pretrained"]["feature_dim"] == 8
    assert by_method["instdisc"]["feature_dim"] == 128  # the trained projection head
    assert by_method["instdisc"]["metrics"] != by_method["pretrained"]["metrics"]


def test_embedding_backbone_is_refused_on_features_and_dgdir_declares_why() -> None:
    import_all_components()
    uem = METHODS.module_dict["uem"]
    with pytest.raises(ConfigError, match="embedding='backbone'.*set embedding='head'"):
        feature_method_cfg({"type": "uem", "embedding": "backbone",
                            "backbone": {"type": "small_cnn"}}, uem, "uem", 16)
    swapped = feature_method_cfg({"type": "uem", "embedding": "head",
                                  "backbone": {"type": "small_cnn"}}, uem, "uem", 16)
    assert swapped["backbone"] == {"type": "identity", "in_dim": 16}
    pretrained = METHODS.module_dict["pretrained"]
    assert feature_method_cfg({"type": "pretrained", "embedding": "backbone",
                               "backbone": {"type": "small_cnn"}}, pretrained, "pretrained",
                              16)["backbone"]["in_dim"] == 16
    assert "Fourier" in needs_images_reason(METHODS.module_dict["dgdir"], "dgdir")
    assert needs_images_reason(uem, "uem") is None


def test_each_cell_keeps_its_features_labels_and_source_rows(tmp_path) -> None:
    config = _grid(tmp_path)
    work_dir = tmp_path / "work"
    assert main(["run", str(config), "--work-dir", str(work_dir), "--launcher", "inline",
                 "--cfg-options", "methods=[pretrained]", "datasets=[npz]",
                 "scenarios=[partial,open]"]) == 0
    for result in work_dir.glob("runs/**/result.json"):
        record = json.loads(result.read_text())
        saved = np.load(result.parent / "features.npz")
        assert saved["query_features"].shape == (record["num_query"], 8)
        assert saved["query_features"].dtype == np.float16
        # the rows kept by the scenario, as indices into the full domain (8 rows per class)
        np.testing.assert_array_equal(saved["query_rows"] // 8, saved["query_labels"])
        assert ("private_pred" in saved) == (record["scenario"] == "open")


def test_backbone_frozen_true_runs_the_method_on_cached_features_of_the_images(
        tmp_path, monkeypatch, shared_cache, capsys) -> None:
    monkeypatch.setenv("U2CDR_CACHE", shared_cache)
    config = tmp_path / "frozen.py"
    frozen = "dict(type='pixels', image_size=8, frozen=True, views=1)"
    config.write_text(f"""
_base_ = [{str(REPO / 'benchmarks' / 'default.py')!r}]
methods = ['pretrained', 'instdisc']
scenarios = ['closed']
digits = dict(pairs=[('printed', 'uci')])
method_library = dict(pretrained=dict(_delete_=True, type='pretrained', backbone={frozen}),
                      instdisc=dict(backbone=dict(_delete_=True, **{frozen}), epochs=1))
""")
    work_dir = tmp_path / "work"
    assert main(["run", str(config), "--work-dir", str(work_dir), "--launcher", "inline"]) == 0
    # extracted once, before the cells, and shared by both methods
    assert capsys.readouterr().err.count("data digits (pixels frozen):") == 1
    records = {r["method"]: r for r in (json.loads(p.read_text())
                                        for p in work_dir.glob("runs/**/result.json"))}
    for record in records.values():
        assert record["status"] == "done"
        assert record["dataset"] == "digits"
        assert record["dataset_cfg"]["type"] == "frozen_features"
        assert record["dataset_cfg"]["images"]["type"] == "digits"
        assert record["dataset_cfg"]["backbone"] == {"type": "pixels", "image_size": 8}
        assert record["inputs"]["feature_dim"] == 64 and record["inputs"]["views"] == 1
    assert records["pretrained"]["feature_dim"] == 64
    assert records["instdisc"]["feature_dim"] == 128
    with pytest.raises(ConfigError, match="backbone.frozen must be True or False"):
        from u2cdr.engine.frozen_mode import with_frozen_backbone
        with_frozen_backbone({"backbone": {"type": "pixels", "frozen": "yes"}}, {"type": "digits"})
