"""Parquet/arrow files with image/label/domain columns, and the hub source's failure message."""
from __future__ import annotations

import io
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pytest
from datasets import ClassLabel, Dataset, Features, Image, Value
from PIL import Image as PILImage

from u2cdr.data.base import DataNotFoundError
from u2cdr.data.class_map import ClassMapError
from u2cdr.data.hf_loader import HFDomainsDataset, OfficeHome


def png(value: int) -> dict:
    buffer = io.BytesIO()
    PILImage.fromarray(np.full((6, 5, 3), value, dtype=np.uint8)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


ROWS = {"image": [png(10), png(20), png(30), png(40), png(50)],
        "domain": ["Art", "Art", "Real World", "Real World", "Real World"]}


def test_parquet_with_class_label_keeps_names_and_normalises_domains(tmp_path: Path) -> None:
    features = Features({"image": Image(), "label": ClassLabel(names=["dog", "cat"]),
                         "domain": Value("string")})
    path = tmp_path / "office.parquet"
    Dataset.from_dict({**ROWS, "label": [1, 0, 0, 1, 1]}, features=features).to_parquet(str(path))
    dataset = HFDomainsDataset(data_files=str(path), cache_dir=str(tmp_path / "cache"))
    assert dataset.domains == ("art", "real_world")
    assert dataset.class_names == ["dog", "cat"]
    loaded = dataset.load()
    assert np.asarray(loaded["real_world"]["label"]).tolist() == [0, 1, 1]
    assert np.asarray(loaded["real_world"][0]["image"])[0, 0].tolist() == [30, 30, 30]


def test_parquet_with_string_labels_maps_into_the_configured_class_order(tmp_path: Path) -> None:
    path = tmp_path / "strings.parquet"
    Dataset.from_dict({**ROWS, "label": ["cat", "dog", "dog", "cat", "owl"]}).to_parquet(str(path))
    dataset = HFDomainsDataset(data_files=[str(path)], class_names=["owl", "dog", "cat"],
                               cache_dir=str(tmp_path / "cache"))
    loaded = dataset.load()
    assert np.asarray(loaded["art"]["label"]).tolist() == [2, 1]
    assert np.asarray(loaded["real_world"]["label"]).tolist() == [1, 2, 0]


def test_string_labels_outside_the_map_are_named(tmp_path: Path) -> None:
    path = tmp_path / "strings.parquet"
    labels = ["Bike", "Bikes", "Mug", "mug", "Mug"]
    Dataset.from_dict({**ROWS, "label": labels}).to_parquet(str(path))
    dataset = OfficeHome(data_files=str(path), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ClassMapError) as error:
        dataset.load()
    assert "office_home: 2 label(s) not in the class map" in str(error.value)
    assert "data_files: label 'Bikes'  (did you mean 'Bike'?)" in str(error.value)
    assert "data_files: label 'mug'  (did you mean 'Mug'?)" in str(error.value)


def test_integer_labels_need_class_names(tmp_path: Path) -> None:
    path = tmp_path / "ints.parquet"
    Dataset.from_dict({**ROWS, "label": [0, 1, 0, 1, 2]}).to_parquet(str(path))
    with pytest.raises(ClassMapError, match="integer labels need class_names="):
        HFDomainsDataset(data_files=str(path), cache_dir=str(tmp_path / "c")).load()
    dataset = HFDomainsDataset(data_files=str(path), class_names=["a", "b", "c"],
                               cache_dir=str(tmp_path / "c"))
    assert np.asarray(dataset.load()["real_world"]["label"]).tolist() == [0, 1, 2]


def test_arrow_stream_file_loads_like_parquet(tmp_path: Path) -> None:
    table = Dataset.from_dict({**ROWS, "label": ["x", "y", "x", "y", "y"]}).data.table
    path = tmp_path / "data.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    dataset = HFDomainsDataset(data_files=str(path), cache_dir=str(tmp_path / "cache"))
    assert dataset.class_names == ["x", "y"]
    sizes = {domain: len(data) for domain, data in dataset.load().items()}
    assert sizes == {"art": 2, "real_world": 3}


def test_missing_data_file_says_where_to_put_data(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"data file\(s\) not found: .*absent\.parquet"):
        OfficeHome(data_files=str(tmp_path / "absent.parquet"), cache_dir=str(tmp_path)).load()


def test_mixed_or_unknown_file_types_are_refused() -> None:
    with pytest.raises(ValueError, match="must all be .parquet or all .arrow"):
        HFDomainsDataset(data_files=["a.parquet", "b.csv"])


def test_hub_failure_names_the_hub_id_and_the_local_alternatives(tmp_path, monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hugging Face Hub (offline mode)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    dataset = OfficeHome(cache_dir=str(tmp_path))  # no local source: the known hub id is used
    assert dataset.source_kind == "hub"
    with pytest.raises(DataNotFoundError) as error:
        dataset.load()
    message = str(error.value)
    assert "could not load 'flwrlabs/office-home' from the Hugging Face hub" in message
    assert "set root=ROOT" in message and "data_files=" in message


def test_generic_hub_source_needs_its_domains_named() -> None:
    with pytest.raises(ValueError, match="give `domains` too"):
        HFDomainsDataset(hub_id="flwrlabs/pacs")
    assert HFDomainsDataset(hub_id="flwrlabs/pacs", domains=["Art Painting", "photo"]).domains == (
        "art_painting", "photo")


def test_images_referenced_by_path_are_copied_into_the_cache(tmp_path: Path, image_writer) -> None:
    files = [tmp_path / "pictures" / f"{value}.png" for value in (70, 80)]
    for path, value in zip(files, (70, 80)):
        image_writer(path, value)
    path = tmp_path / "paths.parquet"
    Dataset.from_dict({"image": [{"bytes": None, "path": str(f)} for f in files],
                       "label": ["a", "b"], "domain": ["x", "y"]}).to_parquet(str(path))
    dataset = HFDomainsDataset(data_files=str(path), cache_dir=str(tmp_path / "cache"))
    dataset.load()
    for file in files:
        file.unlink()  # the cache must not need the originals
    reloaded = HFDomainsDataset(data_files=str(path), cache_dir=str(tmp_path / "cache")).load()
    assert np.asarray(reloaded["y"][0]["image"])[0, 0].tolist() == [80, 80, 80]
