"""Feature datasets: the `features` files dataset, feature transforms, `frozen_features`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from u2cdr.data.build import build_pair
from u2cdr.data.feature_dataset import BadFeaturesError
from u2cdr.data.feature_files import FeatureFileError
from u2cdr.data.feature_transforms import FeatureAugmentation, FeatureRows, feature_transforms
from u2cdr.data.features import FeatureFiles
from u2cdr.data.frozen_features import FrozenFeatures
from u2cdr.registry import ConfigError


def _domains(num_classes: int = 4, per_class: int = 5, dim: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim)) * 3
    out = {}
    for shift, domain in enumerate(("amazon", "webcam")):
        labels = np.repeat(np.arange(num_classes), per_class)
        out[domain] = ((centres[labels] + shift + rng.normal(size=(len(labels), dim)) * 0.3)
                       .astype(np.float64), labels)
    return out


def _mat_folder(root: Path, **kwargs) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for domain, (features, labels) in _domains(**kwargs).items():
        # MATLAB layout: D x N features, 1-based labels as a column.
        scipy.io.savemat(root / f"{domain}.mat", {"fts": features.T, "labels": labels[:, None] + 1})
    return root


def test_mat_folder_with_one_based_labels_loads_zero_based_in_the_global_map(tmp_path) -> None:
    root = _mat_folder(tmp_path / "mats")
    dataset = FeatureFiles(root=str(root), cache_dir=str(tmp_path / "cache"))
    assert dataset.domains == ("amazon", "webcam")
    assert dataset.class_names == ["0", "1", "2", "3"]
    loaded = dataset.load()
    expected, labels = _domains()["webcam"]
    assert np.asarray(loaded["webcam"]["label"]).tolist() == labels.tolist()
    stored = np.asarray(loaded["webcam"].with_format("numpy")["features"])
    np.testing.assert_allclose(stored, expected.astype(np.float32))
    assert dataset._manifest["source"]["label_base"] == 1
    assert dataset.describe_inputs()["feature_dim"] == 6
    again = FeatureFiles(root=str(root), cache_dir=str(tmp_path / "cache"))
    again.load()
    assert again.loaded_from_cache and again.fingerprint() == dataset.fingerprint()


def test_changed_file_content_gets_a_new_cache_entry(tmp_path) -> None:
    root = _mat_folder(tmp_path / "mats")
    before = FeatureFiles(root=str(root), cache_dir=str(tmp_path / "c")).cache_path()
    _mat_folder(root, seed=1)
    assert FeatureFiles(root=str(root), cache_dir=str(tmp_path / "c")).cache_path() != before


def test_npz_folder_and_class_names_file(tmp_path) -> None:
    root = tmp_path / "npz"
    root.mkdir()
    for domain, (features, labels) in _domains().items():
        np.savez(root / f"{domain}.npz", features=features, labels=labels)
    names = tmp_path / "names.txt"
    names.write_text("bike\ncup\nmug\npen\n")
    dataset = FeatureFiles(root=str(root), class_names_file=str(names),
                           cache_dir=str(tmp_path / "cache"))
    assert dataset.class_names == ["bike", "cup", "mug", "pen"]
    loaded = dataset.load()
    assert loaded["amazon"].features["label"].names == ["bike", "cup", "mug", "pen"]
    assert np.asarray(loaded["amazon"]["label"]).tolist() == _domains()["amazon"][1].tolist()


def test_parquet_from_convert_keeps_its_class_names(tmp_path) -> None:
    from u2cdr.data.convert import convert_features

    root = _mat_folder(tmp_path / "mats")
    names = tmp_path / "names.txt"
    names.write_text("a\nb\nc\nd\n")
    out = tmp_path / "office.parquet"
    convert_features(root, out, class_names_file=names)
    dataset = FeatureFiles(data_files=str(out), cache_dir=str(tmp_path / "cache"))
    assert dataset.domains == ("amazon", "webcam")
    assert dataset.class_names == ["a", "b", "c", "d"]
    labels = np.asarray(dataset.load()["amazon"]["label"])
    assert labels.tolist() == _domains()["amazon"][1].tolist()


def test_nan_in_a_file_is_refused_naming_the_file(tmp_path) -> None:
    root = _mat_folder(tmp_path / "mats")
    features, labels = _domains()["amazon"]
    features[3, 2] = np.nan
    scipy.io.savemat(root / "amazon.mat", {"fts": features.T, "labels": labels[:, None] + 1})
    with pytest.raises(FeatureFileError, match=r"amazon\.mat.*row 3"):
        FeatureFiles(root=str(root), cache_dir=str(tmp_path / "cache")).load()


def test_unknown_key_layout_lists_the_keys_found(tmp_path) -> None:
    root = tmp_path / "mats"
    root.mkdir()
    scipy.io.savemat(root / "amazon.mat", {"descriptors": np.ones((4, 3)), "y": np.arange(3)})
    with pytest.raises(FeatureFileError, match=r"amazon\.mat.*descriptors"):
        FeatureFiles(root=str(root), cache_dir=str(tmp_path / "cache")).load()


def test_mismatched_counts_are_refused_naming_the_file(tmp_path) -> None:
    root = tmp_path / "npz"
    root.mkdir()
    np.savez(root / "dslr.npz", features=np.ones((5, 3)), labels=np.arange(4))
    with pytest.raises(FeatureFileError, match=r"dslr\.npz.*5.*4"):
        FeatureFiles(root=str(root), cache_dir=str(tmp_path / "cache")).load()


def test_missing_source_and_missing_domain_are_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match="root"):
        FeatureFiles()
    root = _mat_folder(tmp_path / "mats")
    with pytest.raises(FileNotFoundError, match="dslr.*found: amazon, webcam"):
        FeatureFiles(root=str(root), domains=["amazon", "dslr"], cache_dir=str(tmp_path)).load()


def test_build_pair_gives_feature_rows_and_fitted_transforms(tmp_path) -> None:
    dataset = FeatureFiles(root=str(_mat_folder(tmp_path / "mats")), cache_dir=str(tmp_path / "c"),
                           augmentation=dict(noise_std=0.0, dropout=0.0))
    pair = build_pair(dataset, "amazon", "webcam", "closed", 0, tmp_path / "split.json")
    vector, index = pair.query.images(train=False)[4]
    expected = _domains()["amazon"][0][4]
    np.testing.assert_allclose(vector.numpy(), expected / np.linalg.norm(expected), rtol=1e-5)
    assert index == 4 and pair.query.inputs.dim == 6


def test_train_view_is_one_of_the_cached_views_normalised() -> None:
    vectors = np.eye(3, dtype=np.float32)
    views = np.stack([vectors * 2, vectors * -3], axis=1)  # [3, 2, 3]
    rows = FeatureRows(vectors, views)
    train, evaluation = feature_transforms(vectors, FeatureAugmentation(noise_std=0, dropout=0))
    torch.manual_seed(0)
    seen = {tuple(train(rows[1]).tolist()) for _ in range(20)}
    assert seen == {(0.0, 1.0, 0.0), (0.0, -1.0, 0.0)}
    assert evaluation(rows[1]).tolist() == [0.0, 1.0, 0.0]


def test_zscore_uses_the_domain_statistics_and_mixup_stays_in_the_domain() -> None:
    pool = np.array([[0.0, 10.0], [2.0, 30.0]], dtype=np.float32)
    _, evaluation = feature_transforms(pool, FeatureAugmentation(normalize="zscore"))
    assert evaluation((pool[0], None)).tolist() == [-1.0, -1.0]
    settings = FeatureAugmentation(normalize="none", noise_std=0, dropout=0, mixup_alpha=1.0)
    train, _ = feature_transforms(pool, settings)
    torch.manual_seed(0)
    for _ in range(20):
        mixed = train((pool[0], None)).numpy()
        # λ·pool[0] + (1 − λ)·pool[j] with λ ≥ ½: on the segment, at most halfway to pool[1].
        weight = 1.0 - mixed[0] / 2.0
        assert 0.5 <= weight <= 1.0
        np.testing.assert_allclose(mixed, weight * pool[0] + (1 - weight) * pool[1], rtol=1e-5)


def test_dropout_zeroes_about_its_share_and_rescales() -> None:
    pool = np.ones((4, 1000), dtype=np.float32)
    train, _ = feature_transforms(pool, FeatureAugmentation(normalize="none", noise_std=0,
                                                            dropout=0.25))
    torch.manual_seed(0)
    out = train((pool[0], None)).numpy()
    assert 0.2 < float((out == 0).mean()) < 0.3
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / 0.75], rtol=1e-6)


def test_bad_augmentation_keys_are_named() -> None:
    with pytest.raises(ValueError, match="noise.*valid keys: normalize, noise_std"):
        FeatureAugmentation.from_config({"noise": 0.1})
    with pytest.raises(ValueError, match="normalize='unit'.*l2, zscore, none"):
        FeatureAugmentation(normalize="unit")


def test_frozen_features_take_the_transform_from_the_backbone_and_key_the_cache(tmp_path) -> None:
    digits = dict(type="digits", printed_per_class=2)
    small = FrozenFeatures(images=digits, backbone=dict(type="pixels", image_size=16), views=1,
                           cache_dir=str(tmp_path))
    assert small.images.transform_config.image_size == 16
    large = FrozenFeatures(images=digits, backbone=dict(type="pixels", image_size=20), views=1,
                           cache_dir=str(tmp_path))
    more_views = FrozenFeatures(images=digits, backbone=dict(type="pixels", image_size=16),
                                views=2, cache_dir=str(tmp_path))
    assert len({small.cache_path(), large.cache_path(), more_views.cache_path()}) == 3
    with pytest.raises(ConfigError, match="images.image_size=28 but pixels expects image_size=16"):
        FrozenFeatures(images={**digits, "image_size": 28}, backbone=dict(type="pixels",
                                                                         image_size=16))
    with pytest.raises(ConfigError, match="already gives feature vectors"):
        FrozenFeatures(images=dict(type="frozen_features", images=digits,
                                   backbone=dict(type="pixels")), backbone=dict(type="small_cnn"))


def test_frozen_pixel_features_are_the_images_pixels(tmp_path, shared_cache) -> None:
    dataset = FrozenFeatures(images=dict(type="digits", printed_per_class=2, cache_dir=shared_cache),
                             backbone=dict(type="pixels", image_size=8), views=2, cache_dir=str(tmp_path))
    loaded = dataset.load()
    assert not dataset.loaded_from_cache
    images = dataset.images.load()["printed"]
    _, eval_transform = dataset.images.transforms()
    first = eval_transform(images[0]["image"]).flatten().numpy()
    vectors = np.asarray(loaded["printed"].with_format("numpy")["features"])
    np.testing.assert_allclose(vectors[0], first, rtol=1e-6)
    assert vectors.shape == (len(images), 64)
    views = np.asarray(loaded["printed"].with_format("numpy")["views"]).reshape(len(images), 2, 64)
    assert not np.allclose(views[:, 0], views[:, 1])  # two different augmentations
    assert dataset.describe_inputs()["views"] == 2
    reloaded = FrozenFeatures(images=dict(type="digits", printed_per_class=2, cache_dir=shared_cache),
                              backbone=dict(type="pixels", image_size=8), views=2,
                              cache_dir=str(tmp_path))
    reloaded.load()
    assert reloaded.loaded_from_cache


def test_non_finite_backbone_output_is_refused(tmp_path) -> None:
    dataset = FeatureFiles(root=str(_mat_folder(tmp_path / "m")), cache_dir=str(tmp_path / "c"))
    table = dataset._read_tables()["amazon"]
    table.features[0, 0] = np.inf
    with pytest.raises(BadFeaturesError, match="amazon.*1 row.*row 0"):
        dataset.load()


def test_domain_files_name_domains_whose_file_stems_differ(tmp_path) -> None:
    root = _mat_folder(tmp_path / "mats")
    (root / "amazon.mat").rename(root / "amazon_SURF_L10.mat")
    dataset = FeatureFiles(root=str(root), domain_files={"amazon": "amazon_SURF_L10.mat",
                                                         "webcam": "webcam.mat"},
                           cache_dir=str(tmp_path / "c"))
    assert dataset.domains == ("amazon", "webcam")
    assert len(dataset.load()["amazon"]) == 20
    missing = FeatureFiles(root=str(root), domain_files={"dslr": "dslr_SURF_L10.mat"},
                           cache_dir=str(tmp_path / "c"))
    with pytest.raises(FileNotFoundError, match=r"dslr \(dslr_SURF_L10\.mat\).*amazon_SURF_L10"):
        missing.load()
