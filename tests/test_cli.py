"""The `u2cdr` command: list, show, table, and config errors that stop before any training."""
from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config

from u2cdr.cli import main

REPO = Path(__file__).resolve().parents[1]
DEFAULT = str(REPO / "benchmarks" / "default.py")
FAKE_RUNS = REPO / "tests" / "tables" / "data"


def test_list_shows_registered_components_with_their_summary(capsys) -> None:
    assert main(["list", "methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert {"pretrained", "instdisc"} <= set(names)
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)  # every one has a summary
    assert main(["list", "datasets"]) == 0
    assert {"digits", "office31", "office_home", "domainnet7"} <= {
        line.split()[0] for line in capsys.readouterr().out.splitlines()}


def test_show_and_dry_run_list_every_cell_with_its_state(capsys, tmp_path) -> None:
    grid = Config.fromfile(DEFAULT)
    pairs = len(grid.digits.pairs)
    cells = len(grid.methods) * len(grid.scenarios) * pairs * len(grid.seeds)
    assert main(["show", DEFAULT, "--work-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{cells} cells: {cells} pending" in out
    assert main(["run", DEFAULT, "--dry-run", "--work-dir", str(tmp_path),
                 "--cfg-options", "seeds=[2024,2025]", "scenarios=[open]"]) == 0
    out = capsys.readouterr().out
    open_cells = len(grid.methods) * pairs * 2
    assert f"{open_cells} cells: {open_cells} pending" in out and "open" in out
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_config_errors_exit_with_a_named_problem(capsys) -> None:
    assert main(["run", DEFAULT, "--cfg-options", "methods=[instdics]"]) == 2
    assert "Did you mean 'instdisc'" in capsys.readouterr().err
    assert main(["run", DEFAULT, "--cfg-options", "seed=[1]"]) == 2
    assert "unknown config key 'seed'" in capsys.readouterr().err
    assert main(["run", str(REPO / "benchmarks" / "missing.py")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_a_missing_dataset_stops_the_run_before_training(tmp_path, capsys) -> None:
    config = tmp_path / "grid.py"
    config.write_text(
        "methods = [dict(type='pretrained', backbone=dict(type='resnet18'))]\n"
        f"datasets = [dict(type='office31', root='{tmp_path / 'nowhere'}', "
        "pairs=[('amazon', 'dslr')])]\n"
        f"scenarios = ['closed']\nseeds = [2024]\nwork_dir = '{tmp_path / 'work'}'\n")
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert "office31" in err and "does not exist" in err and "ROOT/<domain>/<class>" in err
    assert not (tmp_path / "work" / "runs").exists()


@pytest.mark.parametrize("fmt, marker", [("md", "| Method"), ("latex", "\\toprule")])
def test_table_writes_markdown_or_latex(tmp_path, fmt: str, marker: str) -> None:
    out = tmp_path / f"tables.{fmt}"
    assert main(["table", str(FAKE_RUNS), "--format", fmt, "--out", str(out)]) == 0
    assert marker in out.read_text()


def test_table_of_an_empty_work_dir_says_why(tmp_path, capsys) -> None:
    assert main(["table", str(tmp_path)]) == 2
    assert "no runs folder" in capsys.readouterr().err


def test_convert_writes_parquet_the_features_dataset_reads(tmp_path, capsys) -> None:
    import numpy as np
    import scipy.io

    from u2cdr.data.features import FeatureFiles

    folder = tmp_path / "mats"
    folder.mkdir()
    for domain in ("amazon", "dslr"):
        scipy.io.savemat(folder / f"{domain}.mat", {"fts": np.arange(12.0).reshape(3, 4),
                                                    "labels": np.array([[1], [2], [2], [3]])})
    out = tmp_path / "office.parquet"
    assert main(["convert", str(folder), str(out)]) == 0
    printed = capsys.readouterr()
    assert "amazon: 4 rows × 3 from" in printed.out and "label_base 1" in printed.err
    dataset = FeatureFiles(data_files=str(out), cache_dir=str(tmp_path / "cache"))
    assert dataset.domains == ("amazon", "dslr") and dataset.class_names == ["0", "1", "2"]
    assert np.asarray(dataset.load()["dslr"]["label"]).tolist() == [0, 1, 1, 2]
    (folder / "dslr.mat").write_bytes(b"not a mat file")
    assert main(["convert", str(folder), str(tmp_path / "bad.parquet")]) == 2
    assert "dslr.mat" in capsys.readouterr().err
