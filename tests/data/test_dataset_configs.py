"""The dataset config pieces under benchmarks/_base_/datasets parse and build."""
from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config

from u2cdr.registry import DATASETS, build

BASE = Path(__file__).resolve().parents[2] / "benchmarks" / "_base_" / "datasets"
EXPECTED_PAIRS = {
    "digits": [("mnist", "uci"), ("uci", "mnist")],
    "office31": [("amazon", "dslr"), ("amazon", "webcam"), ("dslr", "amazon"), ("dslr", "webcam"),
                 ("webcam", "amazon"), ("webcam", "dslr")],
    "office_home": [(q, g) for q in ("art", "clipart", "product", "real_world")
                    for g in ("art", "clipart", "product", "real_world") if q != g],
    "domainnet7": [("quickdraw", "clipart"), ("clipart", "painting"), ("painting", "infograph"),
                   ("infograph", "sketch"), ("sketch", "real")],
}


@pytest.mark.parametrize("name", sorted(EXPECTED_PAIRS))
def test_config_builds_without_data_and_its_pairs_name_real_domains(name: str) -> None:
    config = Config.fromfile(str(BASE / f"{name}.py"))
    assert list(config.keys()) == [name]
    dataset_cfg = dict(config[name])
    pairs = [tuple(pair) for pair in dataset_cfg.pop("pairs")]
    assert pairs == EXPECTED_PAIRS[name]
    dataset = build(DATASETS, dataset_cfg, f"datasets.{name}")
    assert dataset.name == name
    assert {domain for pair in pairs for domain in pair} <= set(dataset.domains)


def test_office_home_config_points_at_the_hub_copy() -> None:
    config = Config.fromfile(str(BASE / "office_home.py"))
    assert config.office_home.hub_id == "flwrlabs/office-home" and config.office_home.root is None
