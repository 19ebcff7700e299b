"""Scenario class splits: sizes, containment, determinism, reuse from file, and refusals."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from u2cdr.data import splits
from u2cdr.data.splits import draw_split, load_or_draw_split, split_fingerprint

CELL = {"dataset": "office31", "query": "amazon", "gallery": "dslr"}
ALL31 = list(range(31))


def test_closed_keeps_every_class_of_both_domains() -> None:
    split = draw_split([0, 1, 2, 5], [0, 1, 2, 3], "closed", 2024, **CELL)
    assert split["query_classes"] == [0, 1, 2, 5]
    assert split["gallery_classes"] == [0, 1, 2, 3]
    assert split["shared_classes"] == [0, 1, 2]
    assert split["private_query_classes"] == [5]


@pytest.mark.parametrize("num_classes, half", [(31, 15), (65, 32), (7, 3), (10, 5)])
def test_partial_query_keeps_floor_half_of_the_gallery(num_classes: int, half: int) -> None:
    classes = list(range(num_classes))
    split = draw_split(classes, classes, "partial", 2024, **CELL)
    assert len(split["query_classes"]) == half
    assert set(split["query_classes"]) < set(split["gallery_classes"])
    assert split["gallery_classes"] == classes
    assert split["shared_classes"] == split["query_classes"]
    assert split["private_query_classes"] == []


@pytest.mark.parametrize("num_classes, half", [(31, 15), (65, 32), (7, 3), (10, 5)])
def test_open_gallery_keeps_floor_half_of_the_query_and_the_rest_is_private(
        num_classes: int, half: int) -> None:
    classes = list(range(num_classes))
    split = draw_split(classes, classes, "open", 2024, **CELL)
    assert len(split["gallery_classes"]) == half
    assert set(split["gallery_classes"]) < set(split["query_classes"])
    assert split["query_classes"] == classes
    assert split["shared_classes"] == split["gallery_classes"]
    assert split["private_query_classes"] == sorted(set(classes) - set(split["gallery_classes"]))


def test_partial_draws_only_classes_the_query_domain_has() -> None:
    gallery = list(range(10))
    query = [0, 2, 4, 6, 8, 9]
    for seed in range(20):
        kept = draw_split(query, gallery, "partial", seed, **CELL)["query_classes"]
        assert len(kept) == 5 and set(kept) <= set(query)


def test_same_inputs_give_the_same_split_and_seeds_or_cells_change_it() -> None:
    first = draw_split(ALL31, ALL31, "open", 2024, **CELL)
    assert draw_split(ALL31, ALL31, "open", 2024, **CELL) == first
    draws = {tuple(draw_split(ALL31, ALL31, "open", seed, **CELL)["gallery_classes"])
             for seed in (2024, 2025, 2026)}
    assert len(draws) == 3
    reversed_cell = {**CELL, "query": "dslr", "gallery": "amazon"}
    assert draw_split(ALL31, ALL31, "open", 2024, **reversed_cell)["gallery_classes"] != \
        first["gallery_classes"]


def test_fingerprint_is_the_hash_of_the_content() -> None:
    split = draw_split(ALL31, ALL31, "partial", 1, **CELL)
    assert split["fingerprint"] == split_fingerprint(split)
    other = draw_split(ALL31, ALL31, "partial", 2, **CELL)
    assert other["fingerprint"] != split["fingerprint"]


def test_unknown_scenario_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError,
                       match="unknown scenario 'openset'; valid choices: closed, partial, open"):
        draw_split(ALL31, ALL31, "openset", 0, **CELL)


def test_split_leaving_fewer_than_two_classes_is_refused() -> None:
    with pytest.raises(ValueError, match="leaves the query domain 'amazon' with 1 class"):
        draw_split([0, 1, 2], [0, 1, 2], "partial", 0, **CELL)
    with pytest.raises(ValueError, match="leaves the gallery domain 'dslr' with 1 class"):
        draw_split([0, 1, 2], [0, 1, 2], "open", 0, **CELL)


def test_split_is_written_once_and_reused_from_the_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "splits" / "amazon__dslr" / "open-seed2024.json"
    drawn = load_or_draw_split(path, ALL31, ALL31, "open", 2024, **CELL)
    assert json.loads(path.read_text()) == drawn
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind

    def must_not_draw(*args, **kwargs):
        raise AssertionError("the saved split should be reused")

    monkeypatch.setattr(splits, "draw_split", must_not_draw)
    assert load_or_draw_split(path, ALL31, ALL31, "open", 2024, **CELL) == drawn


def test_saved_split_of_another_cell_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "split.json"
    load_or_draw_split(path, ALL31, ALL31, "open", 2024, **CELL)
    expected = f"split file {path} is for {{'seed': 2024}}, not {{'seed': 2025}}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        load_or_draw_split(path, ALL31, ALL31, "open", 2025, **CELL)
    with pytest.raises(ValueError, match="'scenario': 'open'"):
        load_or_draw_split(path, ALL31, ALL31, "partial", 2024, **CELL)


def test_edited_or_stale_split_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "split.json"
    saved = load_or_draw_split(path, ALL31, ALL31, "partial", 3, **CELL)
    with pytest.raises(ValueError, match="no longer has"):
        load_or_draw_split(path, ALL31[:-16], ALL31, "partial", 3, **CELL)
    path.write_text(json.dumps({**saved, "query_classes": saved["query_classes"][:-1]}))
    with pytest.raises(ValueError, match=re.escape(f"split file {path} was edited")):
        load_or_draw_split(path, ALL31, ALL31, "partial", 3, **CELL)
