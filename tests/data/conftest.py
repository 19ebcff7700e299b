"""Tiny on-disk image data for the loader tests, and the session's digits dataset."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from u2cdr.data.digits import DigitsDataset


def write_image(path: Path, value: int, size: tuple[int, int] = (12, 10)) -> None:
    """A small RGB JPEG/PNG whose pixels all equal ``value`` (so images are distinguishable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path)


@pytest.fixture
def image_writer() -> Callable[..., None]:
    """``write_image`` for tests that lay out files by hand."""
    return write_image


@pytest.fixture
def make_folder(tmp_path: Path) -> Callable[[dict[str, dict[str, int]]], Path]:
    """``make_folder({'Art': {'Bike': 2}})`` writes ROOT/Art/Bike/{0,1}.png and returns ROOT."""
    counter = iter(range(1, 10_000))

    def make(layout: dict[str, dict[str, int]], root_name: str = "data") -> Path:
        root = tmp_path / root_name
        for domain, classes in layout.items():
            for class_name, count in classes.items():
                for index in range(count):
                    write_image(root / domain / class_name / f"img{index}.png", next(counter) % 256)
        return root

    return make


@pytest.fixture(scope="session")
def digits(shared_cache: str) -> DigitsDataset:
    """The default digits dataset, built once per test session in the session cache."""
    dataset = DigitsDataset(cache_dir=shared_cache)
    dataset.load()
    return dataset
