"""Reliability (issue 8): bad configs, bad data, training faults, interruptions, determinism and
untrusted files each end in a clear message and never in a lost or corrupted result.

Every test goes through the public surface (``u2cdr.cli.main``, ``python -m u2cdr.cli``, the
engine's ``run_cells``, the dataset loaders) on a tiny folder dataset written here with PIL: two
domains of 4 classes × 5 images in five modes (RGB, L, RGBA, P, CMYK) and five sizes, so every
run below also exercises mixed image modes and sizes. Grid configs are JSON (data-only).
"""
from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from u2cdr.cli import main
from u2cdr.data.base import UnreadableImageError
from u2cdr.data.hf_loader import HFDomainsDataset
from u2cdr.engine import runner as runner_module
from u2cdr.engine.config import load_grid_config
from u2cdr.engine.grid import expand_grid
from u2cdr.engine.runner import run_cells
from u2cdr.engine.store import finished_record, write_json_atomic
from u2cdr.methods import instdisc as instdisc_module
from u2cdr.methods.pretrained import Pretrained

BACKBONE = {"type": "small_cnn", "in_channels": 3, "width": 4}
PRETRAINED = {"type": "pretrained", "backbone": BACKBONE, "batch_size": 16}
INSTDISC = {"type": "instdisc", "backbone": BACKBONE, "epochs": 2, "batch_size": 8, "lr": 0.01,
            "low_dim": 16}
CLASSES = ("c0", "c1", "c2", "c3")
MODES = ("RGB", "L", "RGBA", "P", "CMYK")
SIZES = ((12, 12), (20, 16), (18, 24), (30, 14), (20, 20))
IMAGES_PER_CLASS = 5


# ----- fixtures: images, dataset and grid configs -------------------------------------------------
def write_image(path: Path, mode: str, size: tuple[int, int], colour: np.ndarray,
                rng: np.random.Generator) -> None:
    """A noisy image of ``colour`` in ``mode`` (CMYK as JPEG, the others as PNG)."""
    pixels = np.clip(colour + rng.normal(0, 25, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if mode == "RGBA":
        image.putalpha(Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)))
    elif mode == "P":
        image = image.quantize(16)
    elif mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def write_folder(root: Path, domains: dict[str, tuple[str, ...]]) -> Path:
    """``root/<domain>/<class>/img<i>.{png,jpg}``, modes and sizes cycling, colour per class."""
    for domain_index, (domain, classes) in enumerate(domains.items()):
        for class_index, class_name in enumerate(classes):
            rng = np.random.default_rng([domain_index, class_index])
            colour = np.array([60 * class_index % 256, 255 - 50 * class_index, 90 + 30 * domain_index])
            for index in range(IMAGES_PER_CLASS):
                mode = MODES[index % len(MODES)]
                suffix = ".jpg" if mode == "CMYK" else ".png"
                write_image(root / domain / class_name / f"img{index}{suffix}", mode,
                            SIZES[(index + class_index) % len(SIZES)], colour, rng)
    return root


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("faults_data"), {"a": CLASSES, "b": CLASSES})


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults_cache")


def dataset_cfg(root: Path, cache: Path, pairs=(("a", "b"),), **extra) -> dict:
    return {"type": "hf_domains", "root": str(root), "image_size": 16, "channels": 3,
            "augmentation": "none", "cache_dir": str(cache), "pairs": [list(p) for p in pairs],
            **extra}


def write_grid(path: Path, methods: list, datasets: list, scenarios=("closed",), seeds=(1,),
               **top) -> Path:
    """A JSON grid config (data only: nothing in it can run code)."""
    path.write_text(json.dumps({"methods": methods, "datasets": datasets,
                                "scenarios": list(scenarios), "seeds": list(seeds), **top}))
    return path


def run_inline(config: Path, work: Path) -> int:
    return main(["run", str(config), "--work-dir", str(work), "--launcher", "inline"])


def result_paths(work: Path) -> list[Path]:
    return sorted((work / "runs").rglob("result.json"))


def results_by_cell(work: Path) -> dict[tuple, dict]:
    """``{(method, scenario, seed): record}``; fails if a cell has two records."""
    found: dict[tuple, dict] = {}
    for path in result_paths(work):
        record = json.loads(path.read_text())
        cell = (record["method"], record["scenario"], record["seed"])
        assert cell not in found, f"cell {cell} has two records"
        found[cell] = record
    return found


# ----- bad configs --------------------------------------------------------------------------------
def _set(key: str, value):
    """A change to the grid's top level."""
    return lambda grid: grid.update({key: value})


def _set_method(**changes):
    return lambda grid: grid.update(methods=[{**INSTDISC, **changes}])


def _set_dataset(**changes):
    return lambda grid: grid.update(datasets=[{**grid["datasets"][0], **changes}])


BAD_CONFIGS = [
    ("unknown key", _set("seed", [1]), r"unknown config key 'seed'. Did you mean 'seeds'"),
    ("misspelt method", _set_method(type="instdics"),
     r"methods\[0\]: unknown method 'instdics'. Did you mean 'instdisc'"),
    ("misspelt backbone", _set_method(backbone={"type": "smal_cnn"}),
     r"methods\[0\].backbone: unknown backbone 'smal_cnn'. Did you mean 'small_cnn'"),
    ("misspelt dataset", _set_dataset(type="hf_domain"),
     r"datasets\[0\]: unknown dataset 'hf_domain'. Did you mean 'hf_domains'"),
    ("misspelt method key", _set_method(batchsize=8),
     r"methods\[0\] \(instdisc\)\.batchsize: unknown key for InstDisc. Did you mean 'batch_size'"),
    ("a string for an int", _set_method(epochs="2"),
     r"methods\[0\] \(instdisc\)\.epochs: expected int, got '2' \(str\)"),
    ("a name for a dict", _set_method(backbone="small_cnn"),
     r"methods\[0\] \(instdisc\)\.backbone: expected dict, got 'small_cnn' \(str\)"),
    ("a float for an int", _set_dataset(image_size=16.5),
     r"datasets\[0\].image_size: expected int \| None, got 16.5 \(float\)"),
    ("a bare string for a list", _set("scenarios", "closed"),
     r"`scenarios` must be a list .*got 'closed'"),
    ("a bare int for a list", _set("seeds", 2024), r"`seeds` must be a list .*got 2024"),
    ("a word for seconds", _set("cell_timeout", "ten"),
     r"cell_timeout: expected a number of seconds or None, got 'ten'"),
    ("scenario outside closed/partial/open", _set("scenarios", ["closed", "opne"]),
     r"scenarios\[1\]: unknown scenario 'opne'. Did you mean 'open'\? "
     r"Valid choices: closed, partial, open"),
    ("a domain the dataset lacks", _set_dataset(pairs=[["a", "d"]]),
     r"gallery domain 'd' is not a domain of hf_domains. Valid domains: a, b"),
]


@pytest.mark.parametrize("case, change, message", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_config_mistakes_stop_the_run_before_any_cell_with_the_key_named(
        case, change, message, data_root, data_cache, tmp_path, capsys) -> None:
    grid = {"methods": [INSTDISC], "datasets": [dataset_cfg(data_root, data_cache)],
            "scenarios": ["closed"], "seeds": [1]}
    change(grid)
    config = tmp_path / "grid.json"
    config.write_text(json.dumps(grid))
    assert run_inline(config, tmp_path / "work") == 2
    assert re.search(message, capsys.readouterr().err), case
    assert not (tmp_path / "work" / "runs").exists()  # nothing ran


def test_a_split_leaving_fewer_than_two_classes_stops_the_run_before_training(
        tmp_path, data_cache, capsys) -> None:
    root = write_folder(tmp_path / "data", {"a": CLASSES[:3], "b": CLASSES[:3]})
    config = write_grid(tmp_path / "grid.json", [PRETRAINED], [dataset_cfg(root, data_cache)],
                        scenarios=["closed", "partial"])
    assert run_inline(config, tmp_path / "work") == 2
    err = capsys.readouterr().err
    assert "partial split of hf_domains a→b (seed 1) leaves the query domain 'a' with 1 class(es)" in err
    assert "at least 2 per domain" in err
    assert not (tmp_path / "work" / "runs").exists()


# ----- bad data -----------------------------------------------------------------------------------
def test_a_missing_root_and_an_offline_hub_id_stop_the_run_saying_where_data_goes(
        tmp_path, data_cache, capsys) -> None:
    missing = write_grid(tmp_path / "missing.json", [PRETRAINED],
                         [dataset_cfg(tmp_path / "nowhere", data_cache)])
    assert run_inline(missing, tmp_path / "work") == 2
    err = capsys.readouterr().err
    assert f"root '{tmp_path / 'nowhere'}' does not exist" in err and "ROOT/<domain>/<class>" in err
    hub = {"type": "hf_domains", "hub_id": "nobody/no-such-dataset", "domains": ["a", "b"],
           "class_names": list(CLASSES), "cache_dir": str(data_cache), "pairs": [["a", "b"]]}
    offline = write_grid(tmp_path / "hub.json", [PRETRAINED], [hub])
    assert run_inline(offline, tmp_path / "work") == 2
    err = capsys.readouterr().err
    assert "could not load 'nobody/no-such-dataset' from the Hugging Face hub" in err
    assert "offline, use a local copy instead" in err
    assert not (tmp_path / "work" / "runs").exists()


def _add_bad_images(domain_dir: Path) -> list[Path]:
    """A text file named .png, a JPEG cut inside its header, one cut inside its pixel data."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
        buffer, format="JPEG")
    jpeg = buffer.getvalue()
    bad = {domain_dir / "c0" / "notes.png": b"these are notes, not pixels",
           domain_dir / "c1" / "header_cut.jpg": jpeg[:200],
           domain_dir / "c2" / "pixels_cut.jpg": jpeg[: len(jpeg) * 2 // 3]}
    for path, blob in bad.items():
        path.write_bytes(blob)
    return list(bad)


def test_unreadable_images_are_skipped_with_a_warning_and_counted_in_the_record(
        tmp_path, data_cache) -> None:
    root = write_folder(tmp_path / "data", {"a": CLASSES, "b": CLASSES})
    bad = _add_bad_images(root / "b")
    # 3 bad of 23 images (13 %) in b: allowed by max_bad_fraction=0.2
    config = write_grid(tmp_path / "grid.json", [PRETRAINED],
                        [dataset_cfg(root, data_cache, max_bad_fraction=0.2)])
    assert run_inline(config, tmp_path / "work") == 0
    [record] = results_by_cell(tmp_path / "work").values()
    assert record["status"] == "done"
    assert record["skipped_images"] == {"a": 0, "b": 3}
    assert record["num_gallery"] == len(CLASSES) * IMAGES_PER_CLASS  # the good ones, all kept
    log = next((tmp_path / "work" / "runs").rglob("log.txt")).read_text()
    assert "WARNING" in log and "skipped 3 unreadable image(s) of 23" in log
    for path in bad:
        assert str(path) in log


def test_more_bad_images_than_max_bad_fraction_stop_the_run_naming_the_option(
        tmp_path, data_cache, capsys) -> None:
    root = write_folder(tmp_path / "data", {"a": CLASSES, "b": CLASSES})
    bad = _add_bad_images(root / "b")
    config = write_grid(tmp_path / "grid.json", [PRETRAINED], [dataset_cfg(root, data_cache)])
    assert run_inline(config, tmp_path / "work") == 2  # default max_bad_fraction 0.01
    err = capsys.readouterr().err
    assert "3 of 23 images (13.0%) of domain 'b' are unreadable" in err
    assert "max_bad_fraction=0.01" in err and str(bad[0]) in err
    assert not (tmp_path / "work" / "runs").exists()
    # the same check on the loader: nothing half-built is cached
    dataset = HFDomainsDataset(root=str(root), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(UnreadableImageError, match="max_bad_fraction"):
        dataset.load()
    assert [p.suffix for p in dataset.cache_path().parent.iterdir()] == [".lock"]


def test_an_empty_domain_folder_is_named(tmp_path, data_cache, capsys) -> None:
    root = write_folder(tmp_path / "data", {"a": CLASSES, "b": CLASSES})
    (root / "c" / "c0").mkdir(parents=True)  # a domain with a class folder but no image
    config = write_grid(tmp_path / "grid.json", [PRETRAINED],
                        [dataset_cfg(root, data_cache, pairs=[("a", "c")])])
    assert run_inline(config, tmp_path / "work") == 2
    err = capsys.readouterr().err
    assert f"domain folder {str(root / 'c')!r} (domain 'c') holds no images" in err


def test_labels_outside_the_class_map_are_named(tmp_path, data_cache, capsys) -> None:
    root = write_folder(tmp_path / "data", {"a": CLASSES, "b": CLASSES + ("zebra",)})
    config = write_grid(tmp_path / "grid.json", [PRETRAINED],
                        [dataset_cfg(root, data_cache, class_names=list(CLASSES))])
    assert run_inline(config, tmp_path / "work") == 2
    err = capsys.readouterr().err
    assert "zebra" in err and str(root / "b" / "zebra") in err and "c0, c1, c2, c3" in err


def test_images_of_mixed_modes_and_sizes_run_through_a_cell(data_root, data_cache, tmp_path) -> None:
    images = [Image.open(p) for p in sorted(data_root.rglob("img*"))]
    assert {image.mode for image in images} == set(MODES)
    assert len({image.size for image in images}) == len(SIZES)
    config = write_grid(tmp_path / "grid.json", [PRETRAINED], [dataset_cfg(data_root, data_cache)])
    assert run_inline(config, tmp_path / "work") == 0
    [record] = results_by_cell(tmp_path / "work").values()
    assert record["status"] == "done" and record["feature_dim"] == 16
    assert record["num_query"] == record["num_gallery"] == len(CLASSES) * IMAGES_PER_CLASS
    assert 0 < record["metrics"]["map_all"] <= 100


# ----- training faults ----------------------------------------------------------------------------
def test_a_nan_loss_fails_its_cell_naming_term_and_step_and_the_grid_goes_on(
        data_root, data_cache, tmp_path, capsys) -> None:
    exploding = {**INSTDISC, "name": "instdisc_lr1e30", "lr": 1e30}  # weights overflow at step 1
    config = write_grid(tmp_path / "grid.json", [exploding, PRETRAINED],
                        [dataset_cfg(data_root, data_cache)])
    assert run_inline(config, tmp_path / "work") == 1  # a failure, reported
    err = capsys.readouterr().err
    assert "1 done, 1 failed" in err
    expected = "TrainingDiverged: loss term 'L_INCE_A' is nan at epoch 1, step 2"
    assert expected in err
    [status_file] = (tmp_path / "work" / "runs").rglob("instdisc_lr1e30/*/status.json")
    status = json.loads(status_file.read_text())
    assert status["state"] == "failed" and status["error"].startswith(expected)
    assert not (status_file.parent / "result.json").exists()
    assert results_by_cell(tmp_path / "work")[("pretrained", "closed", 1)]["status"] == "done"


def test_an_interrupted_cell_resumes_from_its_last_epoch_and_matches_a_straight_run(
        data_root, data_cache, tmp_path, monkeypatch, capsys) -> None:
    config = write_grid(tmp_path / "grid.json", [INSTDISC], [dataset_cfg(data_root, data_cache)])
    assert run_inline(config, tmp_path / "straight") == 0
    straight = results_by_cell(tmp_path / "straight")[("instdisc", "closed", 1)]

    real_run_epochs = instdisc_module.run_epochs  # a pre-emption right after epoch 1 is saved
    monkeypatch.setattr(instdisc_module, "run_epochs",
                        lambda **kwargs: real_run_epochs(**{**kwargs, "stop_after_epoch": 1}))
    assert run_inline(config, tmp_path / "work") == 1
    assert "stopped after epoch 1/2" in capsys.readouterr().err
    [cell_dir] = {p.parent for p in (tmp_path / "work" / "runs").rglob("cell.json")}
    assert (cell_dir / "ckpt" / "instdisc.pth").is_file()
    monkeypatch.setattr(instdisc_module, "run_epochs", real_run_epochs)
    assert run_inline(config, tmp_path / "work") == 0
    assert "instdisc: resumed from" in (cell_dir / "log.txt").read_text()
    assert "after epoch 1/2" in (cell_dir / "log.txt").read_text()
    resumed = json.loads((cell_dir / "result.json").read_text())
    assert resumed["metrics"] == straight["metrics"]  # bitwise: resume restores every state
    assert resumed["method_info"]["final_losses"] == straight["method_info"]["final_losses"]
    assert resumed["method_info"]["final_losses"]["epoch"] == 2


def test_checkpoint_every_sets_how_often_epochs_are_saved(data_root, data_cache, tmp_path) -> None:
    dataset = dataset_cfg(data_root, data_cache)
    saved = write_grid(tmp_path / "saved.json", [INSTDISC], [dataset])
    assert run_inline(saved, tmp_path / "saved") == 0
    assert len(list((tmp_path / "saved" / "runs").rglob("ckpt/instdisc.pth"))) == 1
    unsaved = write_grid(tmp_path / "unsaved.json", [INSTDISC], [dataset], checkpoint_every=0)
    assert run_inline(unsaved, tmp_path / "unsaved") == 0
    assert not list((tmp_path / "unsaved" / "runs").rglob("ckpt"))
    [unsaved_record] = results_by_cell(tmp_path / "unsaved").values()
    [saved_record] = results_by_cell(tmp_path / "saved").values()
    assert unsaved_record["metrics"] == saved_record["metrics"]  # saving changes no result


# ----- interruptions ------------------------------------------------------------------------------
def test_ctrl_c_keeps_finished_cells_and_the_rerun_repeats_only_unfinished_ones(
        data_root, data_cache, tmp_path, monkeypatch, capsys) -> None:
    config = write_grid(tmp_path / "grid.json", [PRETRAINED], [dataset_cfg(data_root, data_cache)],
                        seeds=[1, 2, 3])
    work = tmp_path / "work"
    original_fit = Pretrained.fit
    fitted: list[int] = []

    def fit_until_ctrl_c(self, pair, work_dir):
        if pair.split["seed"] == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a cell
        fitted.append(pair.split["seed"])
        return original_fit(self, pair, work_dir)

    monkeypatch.setattr(Pretrained, "fit", fit_until_ctrl_c)
    assert run_inline(config, work) == 130
    assert "interrupted; finished cells are kept, rerun the same command" in capsys.readouterr().err
    [first] = result_paths(work)
    assert json.loads(first.read_text())["seed"] == 1
    [interrupted] = [json.loads(p.read_text()) for p in (work / "runs").rglob("status.json")
                     if json.loads(p.read_text())["state"] != "done"]
    assert interrupted["state"] == "interrupted"
    assert not list((work / "runs").rglob("lock"))
    assert main(["table", str(work)]) == 0  # the store stays readable
    stamp = first.stat().st_mtime_ns

    monkeypatch.setattr(Pretrained, "fit", lambda self, pair, work_dir: fitted.append(
        pair.split["seed"]) or original_fit(self, pair, work_dir))
    assert run_inline(config, work) == 0
    assert fitted == [1, 2, 3]  # seed 1 was not fitted again
    assert first.stat().st_mtime_ns == stamp
    assert sorted(results_by_cell(work)) == [("pretrained", "closed", s) for s in (1, 2, 3)]


WRITER = """
import sys
from pathlib import Path
from u2cdr.engine.store import write_json_atomic
path = Path(sys.argv[1])
records = [{"key": "k", "status": "done", "metrics": {"map_all": float(i)}, "pad": str(i) * 4_000_000}
           for i in range(2)]
write_json_atomic(path, records[0])
print("ready", flush=True)
index = 0
while True:
    index += 1
    write_json_atomic(path, records[index % 2])
"""


def test_a_kill_during_a_result_write_leaves_the_old_or_the_new_record_whole(tmp_path) -> None:
    path = tmp_path / "cell" / "result.json"
    for attempt in range(10):  # until a kill lands inside a write (a temp file is left behind)
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                                  text=True)
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(0.05 + 0.03 * attempt)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        record = finished_record(path.parent, "k")
        assert record is not None, "the record is unreadable after a kill"
        index = int(record["metrics"]["map_all"])
        assert record["pad"] == str(index) * 4_000_000  # whole, not a mix of two writes
        leftovers = [p.name for p in path.parent.iterdir() if p.name != "result.json"]
        assert all(name.startswith(".result.json.") and name.endswith(".tmp") for name in leftovers)
        if leftovers:
            break
    else:
        pytest.fail("no kill landed inside a write in 10 tries")


def test_a_cell_finished_by_another_runner_after_our_check_is_not_run_again(
        data_root, data_cache, tmp_path, monkeypatch) -> None:
    config = write_grid(tmp_path / "grid.json", [PRETRAINED], [dataset_cfg(data_root, data_cache)],
                        seeds=[1, 2])
    cells = expand_grid(load_grid_config(config))
    work = tmp_path / "work"
    fits: list[int] = []
    original_fit = Pretrained.fit
    monkeypatch.setattr(Pretrained, "fit", lambda self, pair, work_dir: fits.append(
        pair.split["seed"]) or original_fit(self, pair, work_dir))
    real_claim = runner_module.claim
    raced: set[Path] = set()

    def claim_after_another_runner_finished(cell_dir: Path) -> bool:
        if cell_dir not in raced:  # the other runner runs and releases the cell right now
            raced.add(cell_dir)
            run_cells([c for c in cells if work / c.relative_dir == cell_dir], work,
                      launcher="inline")
        return real_claim(cell_dir)

    monkeypatch.setattr(runner_module, "claim", claim_after_another_runner_finished)
    summary = run_cells(cells, work, launcher="inline")
    assert sorted(fits) == [1, 2]  # each cell fitted once, by the other runner
    assert summary.counts["done"] == 2 and not summary.failures
    assert len(result_paths(work)) == 2 and not list(work.rglob("lock"))


# ----- the SIGKILL drill: kill a grid, rerun it with two runners at once, compare -----------------
def _cli(config: Path, work: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "U2CDR_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1",
           "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    with open(log, "w") as stream:
        return subprocess.Popen([sys.executable, "-m", "u2cdr.cli", "run", str(config),
                                 "--work-dir", str(work)], stdout=stream, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)


def _runs_of(cell_dir: Path) -> int:
    """How many times a cell process started its data step (one ``data:`` log line each)."""
    log = cell_dir / "log.txt"
    return log.read_text().count(" INFO data: ") if log.exists() else 0


def test_sigkill_mid_grid_then_rerun_gives_every_cell_once_with_uninterrupted_metrics(
        data_root, data_cache, tmp_path) -> None:
    config = write_grid(tmp_path / "grid.json", [PRETRAINED, {**INSTDISC, "epochs": 1}],
                        [dataset_cfg(data_root, data_cache)], seeds=[1, 2])
    cells = expand_grid(load_grid_config(config))
    assert len(cells) == 4
    reference = tmp_path / "reference"
    assert run_inline(config, reference) == 0  # uninterrupted, in this process, one thread
    expected = {cell: record["metrics"] for cell, record in results_by_cell(reference).items()}

    work = tmp_path / "work"
    killed = _cli(config, work, tmp_path / "killed.log")
    deadline = time.time() + 120
    while not result_paths(work) and killed.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)  # the runner and its cell process, mid-grid
    killed.wait()
    finished = result_paths(work)
    assert 1 <= len(finished) < len(cells), (tmp_path / "killed.log").read_text()[-2000:]
    for path in finished:  # the store stays readable
        assert finished_record(path.parent, json.loads(path.read_text())["key"]) is not None
    runs_before = {c.key: _runs_of(work / c.relative_dir) for c in cells}
    stamps = {path: path.stat().st_mtime_ns for path in finished}

    runners = [_cli(config, work, tmp_path / f"rerun{i}.log") for i in range(2)]
    for index, process in enumerate(runners):
        assert process.wait(timeout=180) == 0, (tmp_path / f"rerun{index}.log").read_text()[-3000:]

    got = results_by_cell(work)  # asserts no cell has two records
    assert got.keys() == expected.keys()
    for cell, record in got.items():
        assert record["status"] == "done"
        assert record["metrics"] == expected[cell], cell  # bitwise equal on the CPU
        assert record["determinism"]["expected"] == "bitwise"
    finished_dirs = {path.parent for path in finished}
    for cell in cells:  # finished cells were not run again; every other cell ran exactly once more
        cell_dir = work / cell.relative_dir
        rerun = 0 if cell_dir in finished_dirs else 1
        assert _runs_of(cell_dir) == runs_before[cell.key] + rerun, cell.label
        if rerun:
            assert not (cell_dir / "lock").exists()
    assert all(path.stat().st_mtime_ns == stamp for path, stamp in stamps.items())


# ----- determinism --------------------------------------------------------------------------------
def test_same_config_and_seed_give_bitwise_equal_metrics_and_the_record_says_so(
        data_root, data_cache, tmp_path) -> None:
    config = write_grid(tmp_path / "grid.json", [INSTDISC], [dataset_cfg(data_root, data_cache)],
                        scenarios=["open"])
    assert run_inline(config, tmp_path / "one") == 0
    assert run_inline(config, tmp_path / "two") == 0
    [one] = results_by_cell(tmp_path / "one").values()
    [two] = results_by_cell(tmp_path / "two").values()
    assert one["metrics"] == two["metrics"] and "open_set_acc" in one["metrics"]
    determinism = one["determinism"]
    assert determinism["expected"] == "bitwise"
    assert determinism["torch_threads"] == torch.get_num_threads()
    assert "seed" in determinism["statement"]


# ----- untrusted files ----------------------------------------------------------------------------
class _RunsCodeWhenUnpickled:
    """Unpickling this object creates a file: what a hostile checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_checkpoints_that_would_run_code_are_refused_not_loaded(
        data_root, data_cache, tmp_path, capsys) -> None:
    marker = tmp_path / "code_ran"
    hostile = tmp_path / "hostile.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "x": _RunsCodeWhenUnpickled(marker)},
               hostile)
    backbone = {"type": "resnet18", "in_channels": 3, "checkpoint": str(hostile)}
    config = write_grid(tmp_path / "grid.json", [{**PRETRAINED, "backbone": backbone}],
                        [dataset_cfg(data_root, data_cache)])
    assert run_inline(config, tmp_path / "work") == 2
    err = capsys.readouterr().err
    assert "weights_only=True" in err and str(hostile) in err
    assert not marker.exists()

    # a cell's own epoch checkpoint is read the same way
    config = write_grid(tmp_path / "instdisc.json", [INSTDISC], [dataset_cfg(data_root, data_cache)])
    [cell] = expand_grid(load_grid_config(config))
    cell_dir = tmp_path / "work2" / cell.relative_dir
    (cell_dir / "ckpt").mkdir(parents=True)
    torch.save({"epoch": 1, "x": _RunsCodeWhenUnpickled(marker)}, cell_dir / "ckpt" / "instdisc.pth")
    assert run_inline(config, tmp_path / "work2") == 1
    status = json.loads((cell_dir / "status.json").read_text())
    assert "weights_only=True" in status["error"] and "delete it" in status["error"]
    assert not marker.exists()


def test_yaml_configs_run_like_python_ones(data_root, data_cache, tmp_path) -> None:
    dataset = dataset_cfg(data_root, data_cache)
    yaml_text = (
        "methods:\n"
        "  - {type: pretrained, batch_size: 16, backbone: {type: small_cnn, in_channels: 3, width: 4}}\n"
        f"datasets:\n  - {json.dumps(dataset)}\n"
        "scenarios: [closed]\nseeds: [1]\n")
    (tmp_path / "grid.yaml").write_text(yaml_text)
    python_text = (f"methods = [{PRETRAINED!r}]\ndatasets = [{dataset!r}]\n"
                   "scenarios = ['closed']\nseeds = [1]\n")
    (tmp_path / "grid.py").write_text(python_text)
    assert run_inline(tmp_path / "grid.yaml", tmp_path / "yaml") == 0
    assert run_inline(tmp_path / "grid.py", tmp_path / "python") == 0
    [from_yaml] = results_by_cell(tmp_path / "yaml").values()
    [from_python] = results_by_cell(tmp_path / "python").values()
    assert from_yaml["key"] == from_python["key"] and from_yaml["metrics"] == from_python["metrics"]


def test_a_failed_write_never_replaces_a_finished_record(tmp_path, monkeypatch) -> None:
    """A write that dies (disk full, Ctrl-C) before its rename leaves the old record in place."""
    path = tmp_path / "result.json"
    write_json_atomic(path, {"key": "k", "status": "done", "metrics": {"map_all": 1.0}})

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_json_atomic(path, {"key": "k", "status": "done", "metrics": {"map_all": 2.0}})
    assert finished_record(tmp_path, "k")["metrics"] == {"map_all": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
