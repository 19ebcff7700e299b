"""Grid configs: expansion, narrowing, cell keys, and errors that name the bad key."""
from __future__ import annotations

from pathlib import Path

import pytest

from u2cdr.engine.config import load_grid_config
from u2cdr.engine.grid import check_methods_build, expand_grid
from u2cdr.registry import ConfigError

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "benchmarks" / "default.py"


def write_config(tmp_path: Path, body: str, name: str = "grid.py") -> Path:
    base = REPO / "benchmarks" / "_base_"
    path = tmp_path / name
    path.write_text(f"_base_ = ['{base}/datasets/digits.py', '{base}/methods/digits.py']\n" + body)
    return path


def test_default_grid_expands_to_methods_pairs_scenarios_seeds() -> None:
    cells = expand_grid(load_grid_config(DEFAULT))
    assert len(cells) == 3 * 2 * 3 * 1  # pretrained, instdisc, uem × 2 pairs × 3 scenarios × 1 seed
    assert {c.method for c in cells} == {"pretrained", "instdisc", "uem"}
    assert {(c.query, c.gallery) for c in cells} == {("mnist", "uci"), ("uci", "mnist")}
    assert {c.scenario for c in cells} == {"closed", "partial", "open"}
    assert len({c.key for c in cells}) == len(cells)


def test_cfg_options_narrow_the_grid() -> None:
    cfg = load_grid_config(DEFAULT, {"seeds": [2025], "methods": ["instdisc"],
                                     "scenarios": ["open"]})
    cells = expand_grid(cfg)
    assert [(c.method, c.scenario, c.seed) for c in cells] == [("instdisc", "open", 2025)] * 2


def test_cell_key_ignores_locations_but_not_meaning(tmp_path: Path) -> None:
    here = expand_grid(load_grid_config(DEFAULT))
    moved = expand_grid(load_grid_config(DEFAULT, {"work_dir": str(tmp_path / "elsewhere"),
                                                   "digits.cache_dir": str(tmp_path / "cache")}))
    assert [c.key for c in here] == [c.key for c in moved]
    changed = expand_grid(load_grid_config(DEFAULT, {"method_library.instdisc.temperature": 0.2}))
    changed_keys = {c.key for c in changed if c.method == "instdisc"}
    assert changed_keys.isdisjoint({c.key for c in here if c.method == "instdisc"})
    assert {c.key for c in changed if c.method == "pretrained"} == \
        {c.key for c in here if c.method == "pretrained"}


def test_an_option_at_its_neutral_default_leaves_the_cell_key_unchanged() -> None:
    # UEM's merge_threshold arrived after the digits results: 'global' (Eq. 9 as printed) is
    # how UEM behaved before, so naming it keeps every key; 'local' is a new cell.
    here = {c.key for c in expand_grid(load_grid_config(DEFAULT)) if c.method == "uem"}
    named = expand_grid(load_grid_config(DEFAULT, {"method_library.uem.merge_threshold": "global"}))
    assert {c.key for c in named if c.method == "uem"} == here
    local = expand_grid(load_grid_config(DEFAULT, {"method_library.uem.merge_threshold": "local"}))
    assert {c.key for c in local if c.method == "uem"}.isdisjoint(here)
    detection = expand_grid(load_grid_config(
        DEFAULT, {"method_library.uem.open_set_merge_threshold": "local"}))
    assert {c.key for c in detection if c.method == "uem"}.isdisjoint(here)


def test_unknown_top_level_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = write_config(tmp_path, "methods=['instdisc']\ndatasets=['digits']\nseed=[2024]\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'seed'.*Did you mean 'seeds'"):
        load_grid_config(path)


def test_misspelt_method_suggests_the_registered_name() -> None:
    cfg = load_grid_config(DEFAULT, {"methods": ["instdics"]})
    with pytest.raises(ConfigError, match=r"methods\[0\].*'instdics'.*Did you mean 'instdisc'"):
        expand_grid(cfg)


def test_bad_method_keyword_names_the_config_path() -> None:
    cfg = load_grid_config(DEFAULT, {"methods": [{"type": "instdisc", "temprature": 0.1}]})
    cells = expand_grid(cfg)
    assert cells
    with pytest.raises(ConfigError, match=r"methods\[0\].*temprature.*Did you mean 'temperature'"):
        check_methods_build(cfg, "cpu")


def test_dotted_type_is_refused() -> None:
    cfg = load_grid_config(DEFAULT, {"methods": [{"type": "os.system"}]})
    with pytest.raises(ConfigError, match="dotted-path type 'os.system' is refused"):
        expand_grid(cfg)


def test_bad_scenario_and_domain_are_named() -> None:
    with pytest.raises(ConfigError, match=r"scenarios\[1\].*'opne'.*Did you mean 'open'"):
        expand_grid(load_grid_config(DEFAULT, {"scenarios": ["closed", "opne"]}))
    with pytest.raises(ConfigError, match=r"pairs\[0\].*'mnsit'.*Valid domains: .*mnist"):
        expand_grid(load_grid_config(DEFAULT, {"digits.pairs": [("mnsit", "uci")]}))


def test_seeds_must_be_integers() -> None:
    with pytest.raises(ConfigError, match=r"seeds\[0\]"):
        expand_grid(load_grid_config(DEFAULT, {"seeds": ["2024"]}))


def test_yaml_config_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text("methods: [instdisc]\n"
                    "datasets:\n  - {type: digits, pairs: [[uci, mnist]]}\n"
                    "scenarios: [closed]\nseeds: [7]\n")
    cells = expand_grid(load_grid_config(path))
    assert [(c.method, c.query, c.gallery, c.seed) for c in cells] == [("instdisc", "uci", "mnist", 7)]


def test_exclude_removes_matching_cells() -> None:
    everything = expand_grid(load_grid_config(DEFAULT))
    cfg = load_grid_config(DEFAULT, {"exclude": [{"method": "pretrained", "scenario": "open"}]})
    cells = expand_grid(cfg)
    assert len(cells) == len(everything) - 2  # pretrained × open × 2 pairs
    assert not any(c.method == "pretrained" and c.scenario == "open" for c in cells)
