"""office_caltech10: four domains, ten classes, both spellings of its class folders."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config

from u2cdr.data.base import DataNotFoundError
from u2cdr.data.class_map import ClassMapError
from u2cdr.data.hf_loader import OFFICE_CALTECH10_CLASSES, OfficeCaltech10
from u2cdr.registry import DATASETS, build

BASE = Path(__file__).resolve().parents[2] / "benchmarks" / "_base_" / "datasets"
DOMAINS = ("amazon", "caltech", "dslr", "webcam")
VALID = ("Valid class names (10): back_pack, bike, calculator, headphones, keyboard, "
         "laptop_computer, monitor, mouse, mug, projector")


def test_office31_names_and_plain_names_are_both_read(make_folder, tmp_path: Path) -> None:
    root = make_folder({"amazon": {"back_pack": 1, "laptop_computer": 1},
                        "Caltech": {"backpack": 2, "mug": 1},  # a capitalised domain folder too
                        "dslr": {"laptop": 1, "bike": 1}, "webcam": {"projector": 1}})
    dataset = OfficeCaltech10(root=str(root), cache_dir=str(tmp_path / "cache"))
    loaded = dataset.load()
    assert dataset.class_names == list(OFFICE_CALTECH10_CLASSES)
    assert np.asarray(loaded["amazon"]["label"]).tolist() == [0, 5]
    assert np.asarray(loaded["caltech"]["label"]).tolist() == [0, 0, 8]
    assert np.asarray(loaded["dslr"]["label"]).tolist() == [1, 5]  # bike, laptop
    assert np.asarray(loaded["webcam"]["label"]).tolist() == [9]


def test_wrong_root_is_named_with_the_domain_folders_expected(tmp_path: Path) -> None:
    missing = tmp_path / "office_caltech"
    with pytest.raises(DataNotFoundError) as error:
        OfficeCaltech10(root=str(missing), cache_dir=str(tmp_path / "cache")).load()
    message = str(error.value)
    assert f"office_caltech10: root {str(missing)!r} does not exist" in message
    assert "domain folders: amazon, caltech, dslr, webcam" in message


def test_missing_domain_folder_is_named_with_the_folders_found(make_folder, tmp_path) -> None:
    root = make_folder({"amazon": {"mug": 1}, "dslr": {"mug": 1}, "webcam": {"mug": 1},
                        "caltech256": {"mug": 1}})
    with pytest.raises(DataNotFoundError) as error:
        OfficeCaltech10(root=str(root), cache_dir=str(tmp_path / "cache")).load()
    message = str(error.value)
    assert f"root {str(root)!r} has no folder for domain 'caltech'" in message
    assert "(domain folders found: amazon, caltech256, dslr, webcam)" in message


def test_unknown_class_folder_is_named_with_the_valid_classes(make_folder, tmp_path) -> None:
    layout = {domain: {"mug": 1} for domain in DOMAINS}
    layout["caltech"]["003.backpack"] = 1  # Caltech-256's own folder name
    root = make_folder(layout)
    with pytest.raises(ClassMapError) as error:
        OfficeCaltech10(root=str(root), cache_dir=str(tmp_path / "cache")).load()
    message = str(error.value)
    assert "office_caltech10: 1 class folder(s) not in the class map" in message
    assert str(root / "caltech" / "003.backpack") in message
    assert VALID in message
    assert "Names class_aliases maps: backpack, laptop" in message


def test_class_aliases_from_config_replace_the_built_in_ones(make_folder, tmp_path) -> None:
    layout = {domain: {"mug": 1} for domain in DOMAINS}
    layout["caltech"] = {"003.backpack": 1, "041.coffee-mug": 2}
    root = make_folder(layout)
    aliases = {"caltech": {"003.backpack": "back_pack", "041.coffee-mug": "mug"}}
    dataset = build(DATASETS, {"type": "office_caltech10", "root": str(root),
                               "class_aliases": aliases, "cache_dir": str(tmp_path / "cache")},
                    "datasets[0]")
    assert np.asarray(dataset.load()["caltech"]["label"]).tolist() == [0, 8, 8]
    with pytest.raises(ClassMapError, match=r"class_aliases\['caltech'\]\['041.coffee-mug'\] "
                                            r"→ 'coffee_mug'"):
        OfficeCaltech10(root=str(root), class_aliases={"caltech": {"041.coffee-mug": "coffee_mug"}})


def test_no_root_is_reported_at_load_not_at_construction(tmp_path: Path) -> None:
    dataset = OfficeCaltech10(cache_dir=str(tmp_path / "cache"))
    assert dataset.domains == DOMAINS
    with pytest.raises(DataNotFoundError, match="office_caltech10: no root, data_files or hub_id"):
        dataset.load()


def test_base_config_lists_all_twelve_directions_and_builds_without_data() -> None:
    config = Config.fromfile(str(BASE / "office_caltech10.py"))
    assert list(config.keys()) == ["office_caltech10"]
    dataset_cfg = dict(config.office_caltech10)
    assert dataset_cfg["root"] is None
    pairs = [tuple(pair) for pair in dataset_cfg.pop("pairs")]
    assert pairs == list(itertools.permutations(DOMAINS, 2)) and len(pairs) == 12
    dataset = build(DATASETS, dataset_cfg, "datasets.office_caltech10")
    assert dataset.name == "office_caltech10" and dataset.domains == DOMAINS
