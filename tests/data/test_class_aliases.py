"""class_aliases: names on disk → global class names, for every domain or per domain."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, Features, Image, Value
from PIL import Image as PILImage

from u2cdr.data.class_map import ClassMapError
from u2cdr.data.hf_loader import HFDomainsDataset
from u2cdr.registry import DATASETS, ConfigError, build


@pytest.fixture
def make_named(tmp_path: Path, image_writer):
    """Like ``make_folder``, but files are named ``<class folder><i>.png`` (rows keep only
    the file's name, so the name must say which folder it came from)."""
    def make(layout: dict[str, dict[str, int]]) -> Path:
        root = tmp_path / "data"
        for domain, classes in layout.items():
            for folder, count in classes.items():
                for index in range(count):
                    image_writer(root / domain / folder / f"{folder}{index}.png", 10 * index)
        return root
    return make


def label_of_each_file(dataset: HFDomainsDataset, domain: str) -> dict[str, str]:
    """{file name: class name of its row}."""
    data = dataset.load()[domain].cast_column("image", Image(decode=False))
    return {Path(row["image"]["path"]).name: dataset.class_names[row["label"]] for row in data}


def test_flat_aliases_apply_in_every_domain_and_discovery_yields_their_targets(
        make_named, tmp_path: Path) -> None:
    root = make_named({"caltech": {"hund": 2, "cat": 1}, "sun": {"dog": 1, "auto": 1}})
    dataset = HFDomainsDataset(root=str(root), class_aliases={"hund": "dog", "auto": "car"},
                               cache_dir=str(tmp_path / "cache"))
    assert dataset.class_names == ["car", "cat", "dog"]  # 'hund' and 'auto' are not classes
    assert label_of_each_file(dataset, "caltech") == {
        "cat0.png": "cat", "hund0.png": "dog", "hund1.png": "dog"}
    assert label_of_each_file(dataset, "sun") == {"auto0.png": "car", "dog0.png": "dog"}
    assert np.asarray(dataset.load()["caltech"]["label"]).tolist() == [1, 2, 2]


def test_per_domain_aliases_apply_only_in_their_domain(make_folder, tmp_path: Path) -> None:
    root = make_folder({"caltech": {"vogel": 1, "hund": 1}, "sun": {"flying": 2, "dog": 1}})
    aliases = {"caltech": {"vogel": "bird", "hund": "dog"}, "sun": {"flying": "bird"}}
    dataset = HFDomainsDataset(root=str(root), class_aliases=aliases, class_names=["dog", "bird"],
                               cache_dir=str(tmp_path / "cache"))
    assert np.asarray(dataset.load()["caltech"]["label"]).tolist() == [0, 1]  # hund, vogel
    assert np.asarray(dataset.load()["sun"]["label"]).tolist() == [0, 1, 1]  # dog, flying ×2

    # caltech's alias does not reach sun: a 'hund' folder there is an unknown class, named.
    make_folder({"sun": {"hund": 1}})
    again = HFDomainsDataset(root=str(root), class_aliases=aliases, class_names=["dog", "bird"],
                             cache_dir=str(tmp_path / "cache2"))
    with pytest.raises(ClassMapError) as error:
        again.load()
    message = str(error.value)
    assert "1 class folder(s) not in the class map" in message
    assert str(root / "sun" / "hund") in message and str(root / "caltech" / "hund") not in message
    assert "Valid class names (2): dog, bird" in message
    assert "Names class_aliases maps: caltech: hund, vogel; sun: flying" in message


def test_two_folders_aliased_to_one_class_are_merged(make_named, tmp_path: Path) -> None:
    root = make_named({"sun": {"sofa": 2, "sit": 1, "dog": 1}, "labelme": {"chair": 1}})
    dataset = HFDomainsDataset(root=str(root), cache_dir=str(tmp_path / "cache"),
                               class_aliases={"sun": {"sofa": "chair", "sit": "chair"}})
    assert dataset.class_names == ["chair", "dog"]
    labels = label_of_each_file(dataset, "sun")
    assert labels == {"dog0.png": "dog", "sit0.png": "chair", "sofa0.png": "chair",
                      "sofa1.png": "chair"}
    assert np.bincount(dataset.load()["sun"]["label"], minlength=2).tolist() == [3, 1]


def test_alias_to_a_class_outside_the_map_names_the_alias_and_the_valid_classes(
        tmp_path: Path) -> None:
    with pytest.raises(ClassMapError) as error:
        HFDomainsDataset(root=str(tmp_path), class_names=["bird", "dog"],
                         class_aliases={"caltech": {"hund": "dgo", "vogel": "bird"}})
    message = str(error.value)
    assert "hf_domains: 1 alias target(s) not in the class map" in message
    assert "class_aliases['caltech']['hund'] → 'dgo'  (did you mean 'dog'?)" in message
    assert "Valid class names (2): bird, dog" in message
    assert "vogel" not in message


def test_mixed_forms_are_refused_naming_the_keys_of_each_form(tmp_path: Path) -> None:
    cfg = {"type": "hf_domains", "root": str(tmp_path),
           "class_aliases": {"caltech": {"hund": "dog"}, "auto": "car"}}
    with pytest.raises(ConfigError) as error:
        build(DATASETS, cfg, "datasets[0]")
    message = str(error.value)
    assert message.startswith("datasets[0] (HFDomainsDataset): class_aliases mixes its two forms")
    assert "'caltech' map to dicts" in message and "'auto' map to names" in message


@pytest.mark.parametrize("aliases, named", [
    ({"hund": ""}, "class_aliases['hund']: expected a non-empty string, got ''"),
    ({"sun": {"dog": 3}}, "class_aliases['sun']['dog']: expected a non-empty string, got 3"),
])
def test_an_alias_that_is_not_a_name_is_named(tmp_path: Path, aliases: dict, named: str) -> None:
    with pytest.raises(ClassMapError, match=named.replace("[", r"\[").replace("]", r"\]")):
        HFDomainsDataset(root=str(tmp_path), class_aliases=aliases)


def test_per_domain_key_that_is_no_domain_lists_the_domains(make_folder, tmp_path) -> None:
    root = make_folder({"caltech": {"dog": 1}, "sun": {"dog": 1}})
    dataset = HFDomainsDataset(root=str(root), class_aliases={"caltek": {"hund": "dog"}},
                               cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ClassMapError, match=r"class_aliases names unknown domain\(s\) 'caltek'; "
                                            r"valid domains: caltech, sun"):
        dataset.load()


def test_aliases_key_the_cache_and_an_empty_table_is_no_table(make_folder, tmp_path) -> None:
    root = make_folder({"a": {"hund": 1, "dog": 1}, "b": {"dog": 1}})
    cache = str(tmp_path / "cache")
    plain = HFDomainsDataset(root=str(root), class_names=["dog", "hund"], cache_dir=cache)
    empty = HFDomainsDataset(root=str(root), class_names=["dog", "hund"], class_aliases={},
                             cache_dir=cache)
    aliased = HFDomainsDataset(root=str(root), class_names=["dog", "hund"],
                               class_aliases={"hund": "dog"}, cache_dir=cache)
    assert plain.cache_path() == empty.cache_path() != aliased.cache_path()
    assert np.asarray(plain.load()["a"]["label"]).tolist() == [0, 1]
    assert np.asarray(aliased.load()["a"]["label"]).tolist() == [0, 0]
    assert plain.fingerprint() != aliased.fingerprint()


def png(value: int) -> dict:
    buffer = io.BytesIO()
    PILImage.fromarray(np.full((4, 4, 3), value, dtype=np.uint8)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def test_label_names_of_data_files_resolve_per_domain(tmp_path: Path) -> None:
    # ClassLabel names as VLCS copies hold them: each domain uses its own word for a class.
    features = Features({"image": Image(), "label": ClassLabel(names=["hund", "husky", "bird"]),
                         "domain": Value("string")})
    path = tmp_path / "vlcs.parquet"
    Dataset.from_dict({"image": [png(v) for v in (1, 2, 3, 4)], "label": [0, 2, 1, 2],
                       "domain": ["Caltech", "Caltech", "LabelMe", "LabelMe"]},
                      features=features).to_parquet(str(path))
    dataset = HFDomainsDataset(data_files=str(path), cache_dir=str(tmp_path / "cache"),
                               class_aliases={"caltech": {"hund": "dog"},
                                              "labelme": {"husky": "dog"}})
    assert dataset.domains == ("caltech", "labelme")
    assert dataset.class_names == ["bird", "dog"]  # the targets, not 'hund' and 'husky'
    loaded = dataset.load()
    assert np.asarray(loaded["caltech"]["label"]).tolist() == [1, 0]
    assert np.asarray(loaded["labelme"]["label"]).tolist() == [1, 0]


def test_unaliased_label_of_data_files_is_named_with_its_domain(tmp_path: Path) -> None:
    path = tmp_path / "strings.parquet"
    Dataset.from_dict({"image": [png(1), png(2)], "label": ["hund", "hund"],
                       "domain": ["caltech", "sun"]}).to_parquet(str(path))
    dataset = HFDomainsDataset(data_files=str(path), class_names=["dog"],
                               class_aliases={"caltech": {"hund": "dog"}, "sun": {}},
                               cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ClassMapError) as error:
        dataset.load()
    assert "data_files: label 'hund' (domain 'sun')" in str(error.value)
    assert "(domain 'caltech')" not in str(error.value)
