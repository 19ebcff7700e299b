"""Folder datasets ROOT/<domain>/<class>/<image>: one global class map, named errors."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from u2cdr.data.base import DataNotFoundError
from u2cdr.data.class_map import ClassMapError
from u2cdr.data.folder import UnreadableImageError
from u2cdr.data.hf_loader import (OFFICE31_CLASSES, DomainNet7, HFDomainsDataset, Office31,
                                  OfficeHome)


def labels_by_name(dataset: HFDomainsDataset, domain: str) -> dict[str, list[int]]:
    """{class name: ids given to that class's rows} for one domain."""
    data = dataset.load()[domain]
    names = dataset.class_names
    result: dict[str, list[int]] = {}
    for label in data["label"]:
        result.setdefault(names[label], []).append(label)
    return result


def test_same_class_name_gets_the_same_id_whatever_the_folder_order_and_membership(
        make_folder, tmp_path: Path) -> None:
    # 'photo' lacks 'cat' and has 'zebra', so per-domain folder order would give 'dog' ids 1 and 0.
    root = make_folder({"sketch": {"cat": 1, "dog": 2}, "photo": {"dog": 1, "zebra": 2}})
    dataset = HFDomainsDataset(root=str(root), cache_dir=str(tmp_path / "cache"))
    assert dataset.domains == ("photo", "sketch")
    assert dataset.class_names == ["cat", "dog", "zebra"]
    assert labels_by_name(dataset, "sketch") == {"cat": [0], "dog": [1, 1]}
    assert labels_by_name(dataset, "photo") == {"dog": [1], "zebra": [2, 2]}
    assert dataset.load()["photo"].features["label"].names == ["cat", "dog", "zebra"]


def test_given_class_names_fix_the_ids_and_rows_keep_sorted_file_order(make_folder,
                                                                       tmp_path) -> None:
    root = make_folder({"a": {"x": 3, "y": 1}, "b": {"y": 2, "x": 1}})
    dataset = HFDomainsDataset(root=str(root), class_names=["y", "x"],
                               cache_dir=str(tmp_path / "c"))
    assert np.asarray(dataset.load()["a"]["label"]).tolist() == [1, 1, 1, 0]
    assert np.asarray(dataset.load()["b"]["label"]).tolist() == [1, 0, 0]


def test_unknown_class_folders_are_all_named_with_their_path_and_the_valid_names(
        make_folder, tmp_path: Path) -> None:
    root = make_folder({"amazon": {"bike": 1, "bicycle": 1}, "dslr": {"mug": 1, "Mugs": 1},
                        "webcam": {"mug": 1}})
    dataset = Office31(root=str(root), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ClassMapError) as error:
        dataset.load()
    message = str(error.value)
    assert "office31: 2 class folder(s) not in the class map" in message
    assert str(root / "amazon" / "bicycle") in message
    assert str(root / "dslr" / "Mugs") in message and "did you mean 'mug'?" in message
    assert f"Valid class names (31): {', '.join(OFFICE31_CLASSES)}" in message


def test_office31_accepts_the_original_images_subfolder(make_folder, tmp_path) -> None:
    root = make_folder({"amazon/images": {"bike": 2}, "dslr/images": {"bike": 1, "mug": 1},
                        "webcam/images": {"mug": 1}})
    dataset = Office31(root=str(root), cache_dir=str(tmp_path / "cache"))
    loaded = dataset.load()
    sizes = {domain: len(data) for domain, data in loaded.items()}
    assert sizes == {"amazon": 2, "dslr": 2, "webcam": 1}
    assert loaded["webcam"][0]["label"] == OFFICE31_CLASSES.index("mug")


def test_office_home_normalises_archive_domain_names(make_folder, tmp_path) -> None:
    root = make_folder({"Art": {"Bike": 1}, "Clipart": {"Mug": 1}, "Product": {"TV": 1},
                        "Real World": {"Bike": 1, "Webcam": 1}})
    dataset = OfficeHome(root=str(root), cache_dir=str(tmp_path / "cache"))
    loaded = dataset.load()
    assert sorted(loaded) == ["art", "clipart", "product", "real_world"]
    assert set(loaded["real_world"].unique("domain")) == {"real_world"}
    assert len(dataset.class_names) == 65
    assert [dataset.class_names[i] for i in loaded["real_world"]["label"]] == ["Bike", "Webcam"]


def test_domainnet7_keeps_only_its_seven_classes(make_folder, tmp_path) -> None:
    domains = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
    root = make_folder({domain: {"bird": 1, "airplane": 2, "zebra": 1} for domain in domains})
    dataset = DomainNet7(root=str(root), cache_dir=str(tmp_path / "cache"))
    loaded = dataset.load()
    assert dataset.class_names == [
        "bird", "feather", "teapot", "tiger", "whale", "windmill", "zebra"]
    assert all(np.asarray(data["label"]).tolist() == [0, 6] for data in loaded.values())


def test_missing_root_says_where_to_put_the_data_and_which_hub_id_works(tmp_path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataNotFoundError) as error:
        OfficeHome(root=str(missing), cache_dir=str(tmp_path / "cache")).load()
    message = str(error.value)
    assert f"root {str(missing)!r} does not exist" in message
    assert "ROOT/<domain>/<class>/<image>" in message
    assert "domain folders: art, clipart, product, real_world" in message
    assert "hub_id='flwrlabs/office-home'" in message


def test_no_source_at_all_is_reported_at_load_not_at_construction(tmp_path) -> None:
    dataset = Office31(cache_dir=str(tmp_path / "cache"))  # a grid can be checked without data
    assert dataset.domains == ("amazon", "dslr", "webcam")
    with pytest.raises(DataNotFoundError, match="office31: no root, data_files or hub_id is set"):
        dataset.load()


def test_missing_domain_folder_lists_the_domains_found(make_folder, tmp_path) -> None:
    root = make_folder({"amazon": {"bike": 1}, "webcam": {"bike": 1}})
    with pytest.raises(DataNotFoundError, match=r"no folder for domain 'dslr' \(domain folders "
                                                r"found: amazon, webcam\)"):
        Office31(root=str(root), cache_dir=str(tmp_path / "cache")).load()


def test_unreadable_image_is_named(make_folder, tmp_path) -> None:
    root = make_folder({"a": {"x": 1}, "b": {"x": 1}})
    broken = root / "b" / "x" / "broken.jpg"
    broken.write_bytes(b"not an image")
    dataset = HFDomainsDataset(root=str(root), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(UnreadableImageError, match=str(broken)):
        dataset.load()
    # a failed build leaves nothing that a later load could mistake for data
    assert [p.suffix for p in dataset.cache_path().parent.iterdir()] == [".lock"]


def test_moving_the_data_keeps_cache_and_fingerprint(make_folder, tmp_path, monkeypatch) -> None:
    root = make_folder({"a": {"x": 2}, "b": {"x": 1, "y": 1}})
    cache = str(tmp_path / "cache")
    first = HFDomainsDataset(root=str(root), cache_dir=cache)
    fingerprint = first.fingerprint()
    moved = tmp_path / "moved"
    shutil.move(str(root), moved)  # a rename keeps sizes and mtimes

    def refuse_to_build(self, scratch):
        raise AssertionError("moved data should hit the cache")

    monkeypatch.setattr(HFDomainsDataset, "build_domains", refuse_to_build)
    again = HFDomainsDataset(root=str(moved), cache_dir=cache)
    assert again.fingerprint() == fingerprint and again.loaded_from_cache is True


def test_fingerprint_follows_content(make_folder, image_writer, tmp_path) -> None:
    root = make_folder({"a": {"x": 1}, "b": {"x": 1}})
    before = HFDomainsDataset(root=str(root), cache_dir=str(tmp_path / "cache")).fingerprint()
    image_writer(root / "b" / "x" / "extra.png", 99)
    after = HFDomainsDataset(root=str(root), cache_dir=str(tmp_path / "cache")).fingerprint()
    assert before != after
