"""Feature-file readers: every format, key and shape rule, and the label-base decision."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.io

from u2cdr.data.feature_files import (FEATURE_KEYS, LABEL_KEYS, FeatureFileError, FeatureTable,
                                      read_feature_file, read_feature_parquet,
                                      resolve_label_base, to_zero_based)

# 3 samples x 4 features, every value distinct so a wrong transpose or row order shows.
SAMPLES = np.arange(12, dtype=np.float64).reshape(3, 4) / 4.0


def write_matlab_v73(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A file laid out as MATLAB's ``save -v7.3`` does: a 512-byte text header (user block)
    before HDF5 data, each array stored column-major, i.e. transposed in h5py's view."""
    with h5py.File(path, "w", userblock_size=512) as handle:
        for name, array in arrays.items():
            handle[name] = np.asarray(array).T
            handle[name].attrs["MATLAB_class"] = np.bytes_("double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024"
    with path.open("r+b") as file:
        file.write(header.ljust(116, b" ") + bytes(8) + b"\x00\x02IM")


def table(labels: list, source: str = "a.mat") -> FeatureTable:
    values = np.asarray(labels, dtype=object if labels and isinstance(labels[0], str) else None)
    return FeatureTable(features=np.zeros((len(labels), 2), np.float32),
                        labels=values if values.dtype == object else values.astype(np.int64),
                        source=source, features_key=None, labels_key=None)


def test_mat_v5_transposes_d_by_n_features_and_flattens_column_labels(tmp_path: Path) -> None:
    path = tmp_path / "amazon.mat"
    scipy.io.savemat(path, {"fts": SAMPLES.T, "labels": np.array([[1], [3], [2]])})

    result = read_feature_file(path)

    np.testing.assert_array_equal(result.features, SAMPLES.astype(np.float32))
    assert result.features.dtype == np.float32 and result.features.flags.c_contiguous
    np.testing.assert_array_equal(result.labels, [1, 3, 2])
    assert result.labels.dtype == np.int64
    assert (result.features_key, result.labels_key, result.source) == ("fts", "labels", str(path))


def test_mat_v73_is_read_through_h5py_in_matlab_orientation(tmp_path: Path) -> None:
    path = tmp_path / "webcam.mat"
    write_matlab_v73(path, {"feas": SAMPLES, "gnd": np.array([[2.0], [2.0], [1.0]])})
    with pytest.raises(NotImplementedError):  # the reason the h5py path exists
        scipy.io.loadmat(path)
    with h5py.File(path, "r") as handle:  # on disk the array is stored D x N
        assert handle["feas"].shape == (4, 3)

    result = read_feature_file(path)

    np.testing.assert_array_equal(result.features, SAMPLES.astype(np.float32))
    np.testing.assert_array_equal(result.labels, [2, 2, 1])
    assert (result.features_key, result.labels_key) == ("feas", "gnd")


def test_mat_v73_cell_array_of_class_names(tmp_path: Path) -> None:
    """MATLAB stores a cellstr as references to uint16 char datasets under ``#refs#``."""
    path = tmp_path / "art.mat"
    write_matlab_v73(path, {"X": SAMPLES})
    with h5py.File(path, "r+") as handle:
        references = []
        for index, name in enumerate(["bike", "cup", "bike"]):
            cell = handle.create_dataset(f"#refs#/c{index}",
                                         data=np.array([[ord(c) for c in name]], np.uint16).T)
            cell.attrs["MATLAB_class"] = np.bytes_("char")
            references.append(cell.ref)
        labels = handle.create_dataset("y", data=np.array([references]),
                                       dtype=h5py.ref_dtype)
        labels.attrs["MATLAB_class"] = np.bytes_("cell")

    result = read_feature_file(path)

    assert result.labels.tolist() == ["bike", "cup", "bike"]
    assert result.labels_are_names
    np.testing.assert_array_equal(result.features, SAMPLES.astype(np.float32))


def test_mat_v5_cellstr_and_char_labels_become_names(tmp_path: Path) -> None:
    cells = tmp_path / "cells.mat"
    scipy.io.savemat(cells, {"fts": SAMPLES, "labels": np.array([["cup"], ["pen"], ["cup"]],
                                                                dtype=object)})
    chars = tmp_path / "chars.mat"  # a char matrix: MATLAB pads shorter rows with spaces
    scipy.io.savemat(chars, {"fts": SAMPLES, "labels": np.array(["cup", "pen", "mugs"])})
    blank = tmp_path / "blank.mat"
    scipy.io.savemat(blank, {"fts": SAMPLES, "labels": np.array([["cup"], [""], ["pen"]],
                                                                dtype=object)})

    assert read_feature_file(cells).labels.tolist() == ["cup", "pen", "cup"]
    assert read_feature_file(chars).labels.tolist() == ["cup", "pen", "mugs"]
    with pytest.raises(FeatureFileError, match=r"blank\.mat: 1 labels are empty class names "
                                               r"\(first: row 1\)"):
        read_feature_file(blank)


def test_plain_hdf5_with_mat_suffix_is_read_like_v73(tmp_path: Path) -> None:
    path = tmp_path / "plain.mat"
    with h5py.File(path, "w") as handle:  # no MATLAB header: scipy cannot tell what it is
        handle["fts"] = SAMPLES.T
        handle["labels"] = np.array([[1, 2, 3]])
    result = read_feature_file(path)
    np.testing.assert_array_equal(result.features, SAMPLES.astype(np.float32))
    np.testing.assert_array_equal(result.labels, [1, 2, 3])


def test_npz_with_float_whole_number_labels(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, X=SAMPLES, y=np.array([0.0, 4.0, 1.0]), extra=np.ones(7))

    result = read_feature_file(path)

    np.testing.assert_array_equal(result.features, SAMPLES.astype(np.float32))
    np.testing.assert_array_equal(result.labels, [0, 4, 1])
    assert result.labels.dtype == np.int64
    assert (result.features_key, result.labels_key) == ("X", "y")


def test_key_priority_follows_the_documented_order(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, data=np.zeros((3, 2)), fts=SAMPLES, label=np.array([5, 5, 5]),
             labels=np.array([1, 2, 3]))
    assert FEATURE_KEYS.index("fts") < FEATURE_KEYS.index("data")
    assert LABEL_KEYS.index("labels") < LABEL_KEYS.index("label")

    result = read_feature_file(path)

    assert (result.features_key, result.labels_key) == ("fts", "labels")
    np.testing.assert_array_equal(result.labels, [1, 2, 3])
    chosen = read_feature_file(path, features_key="data", labels_key="label")
    np.testing.assert_array_equal(chosen.features, np.zeros((3, 2), np.float32))
    np.testing.assert_array_equal(chosen.labels, [5, 5, 5])


def test_csv_with_class_name_labels(tmp_path: Path) -> None:
    path = tmp_path / "clipart.csv"
    frame = pd.DataFrame(SAMPLES, columns=["f0", "f1", "f2", "f3"])
    frame.insert(2, "label", [" cat", "dog", "cat"])
    frame.to_csv(path, index=False)

    result = read_feature_file(path)

    np.testing.assert_array_equal(result.features, SAMPLES.astype(np.float32))
    assert result.labels.dtype == object and result.labels.tolist() == ["cat", "dog", "cat"]
    assert (result.features_key, result.labels_key) == (None, "label")


def test_csv_feature_prefix_skips_other_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    frame = pd.DataFrame(SAMPLES, columns=["f0", "f1", "f2", "f3"])
    frame["image"] = ["a.jpg", "b.jpg", "c.jpg"]
    frame["class_id"] = [3, 1, 2]
    frame.to_csv(path, index=False)

    with pytest.raises(FeatureFileError, match=r"not numeric: image \((object|str)\)"):
        read_feature_file(path, labels_key="class_id")
    result = read_feature_file(path, features_key="f", labels_key="class_id")

    np.testing.assert_array_equal(result.features, SAMPLES.astype(np.float32))
    np.testing.assert_array_equal(result.labels, [3, 1, 2])


def test_unknown_keys_are_listed_with_shapes(tmp_path: Path) -> None:
    path = tmp_path / "odd.mat"
    scipy.io.savemat(path, {"a": np.zeros((5, 6)), "b": np.zeros((5, 1), np.uint8)})

    with pytest.raises(FeatureFileError) as caught:
        read_feature_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: no features array found")
    assert "keys in the file: a (5x6 double), b (5x1 uint8)" in message
    assert "set features_key=... (tried fts, feas, features" in message

    with pytest.raises(FeatureFileError, match=r"no labels array found.*tried labels, label"):
        read_feature_file(path, features_key="a")
    with pytest.raises(FeatureFileError, match=r"labels_key='lab' is not in the file; keys in "
                                               r"the file: a \(5x6 double\)"):
        read_feature_file(path, features_key="a", labels_key="lab")


def test_npz_missing_labels_lists_member_shapes(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, fts=SAMPLES, targets=np.array([1, 2, 3]))
    with pytest.raises(FeatureFileError, match=r"keys in the file: fts \(3x4 float64\), "
                                               r"targets \(3 int64\)"):
        read_feature_file(path)


def test_mismatched_counts_name_both(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, fts=np.zeros((5, 4)), labels=np.arange(3))
    with pytest.raises(FeatureFileError, match=r"d\.npz: 5 feature rows but 3 labels"):
        read_feature_file(path)


def test_square_features_are_taken_as_rows(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    square = np.arange(9.0).reshape(3, 3)
    np.savez(path, fts=square, labels=np.arange(3))
    np.testing.assert_array_equal(read_feature_file(path).features, square)


def test_non_finite_features_name_file_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    features = np.ones((4, 3))
    features[2, 1] = np.nan
    features[3, 0] = np.inf
    np.savez(path, fts=features.T, labels=np.arange(4))  # stored D x N: rows still = samples

    with pytest.raises(FeatureFileError) as caught:
        read_feature_file(path)
    message = str(caught.value)
    assert str(path) in message
    assert "2 of 4 feature rows hold NaN or inf (first: row 2, column 1" in message


def test_float32_overflow_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, fts=np.array([[1.0, 1e300], [0.0, 0.0]]), labels=np.arange(2))
    with pytest.raises(FeatureFileError, match=r"1 of 2 feature rows .*row 0, column 1, "
                                               r"value .*1e\+300"):
        read_feature_file(path)


def test_fractional_labels_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, fts=SAMPLES, labels=np.array([1.0, 3.5, 2.0]))
    with pytest.raises(FeatureFileError, match=r"whole numbers; labels\[1\] = .*3\.5"):
        read_feature_file(path)


def test_labels_must_be_a_vector(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, fts=SAMPLES, labels=np.ones((3, 2)))
    with pytest.raises(FeatureFileError, match=r"\[N, 1\] or \[1, N\], got shape \(3, 2\)"):
        read_feature_file(path)


def test_empty_files_are_errors(tmp_path: Path) -> None:
    blank = tmp_path / "blank.mat"
    blank.write_bytes(b"")
    with pytest.raises(FeatureFileError, match=r"blank\.mat: the file is empty"):
        read_feature_file(blank)
    no_rows = tmp_path / "none.npz"
    np.savez(no_rows, fts=np.zeros((0, 4)), labels=np.zeros(0, np.int64))
    with pytest.raises(FeatureFileError, match=r"none\.npz: the file holds no samples"):
        read_feature_file(no_rows)
    header_only = tmp_path / "none.csv"
    header_only.write_text("label,f0,f1\n")
    with pytest.raises(FeatureFileError, match="no samples"):
        read_feature_file(header_only)


def test_unsupported_suffix_lists_valid_choices(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("1 2 3\n")
    with pytest.raises(FeatureFileError, match=r"'\.txt'; valid choices: \.mat, \.npz, \.csv, "
                                               r"\.parquet, \.arrow"):
        read_feature_file(path)


def test_parquet_layout_returns_all_rows_and_splits_by_domain(tmp_path: Path) -> None:
    path = tmp_path / "all.parquet"
    pq.write_table(pa.table({
        "features": pa.array(SAMPLES.tolist(), type=pa.list_(pa.float64())),
        "label": pa.array(["b", "a", "b"]),
        "domain": pa.array(["web", "art", "web"])}), path)

    everything = read_feature_file(path)
    by_domain = read_feature_parquet(path)

    np.testing.assert_array_equal(everything.features, SAMPLES.astype(np.float32))
    assert everything.labels.tolist() == ["b", "a", "b"]
    assert list(by_domain) == ["web", "art"]  # order of first appearance
    np.testing.assert_array_equal(by_domain["web"].features, SAMPLES[[0, 2]].astype(np.float32))
    assert by_domain["web"].labels.tolist() == ["b", "b"]
    assert by_domain["art"].labels.tolist() == ["a"]
    with pytest.raises(FeatureFileError, match="do not apply to .parquet"):
        read_feature_file(path, features_key="fts")


def test_arrow_stream_without_domain_is_one_domain_named_by_stem(tmp_path: Path) -> None:
    path = tmp_path / "Real World.arrow"
    arrow_table = pa.table({"features": pa.array(SAMPLES.tolist()),
                            "label": pa.array([0, 2, 1], pa.int64())})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, arrow_table.schema) as out:
        out.write_table(arrow_table)

    by_domain = read_feature_parquet(path)

    assert list(by_domain) == ["real_world"]
    np.testing.assert_array_equal(by_domain["real_world"].labels, [0, 2, 1])
    np.testing.assert_array_equal(by_domain["real_world"].features, SAMPLES.astype(np.float32))


def test_parquet_with_ragged_features_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"features": pa.array([[1.0, 2.0], [3.0]]),
                             "label": pa.array([0, 1])}), path)
    with pytest.raises(FeatureFileError, match="feature rows differ in length"):
        read_feature_file(path)


def test_auto_base_is_one_when_decided_over_all_domains() -> None:
    # 'dslr' alone (2, 3) could be 0- or 1-based with class 0/1 missing; 'amazon' holds 1..3.
    domains = [table([1, 2, 3], "amazon.mat"), table([2, 3, 3], "dslr.mat")]
    assert resolve_label_base(domains) == 1
    assert resolve_label_base(domains, num_classes=3) == 1
    # A label 0 anywhere means zero-based.
    assert resolve_label_base(domains + [table([0], "webcam.mat")]) == 0
    # 1..3 but 4 classes: the largest is not the last class, so zero-based (class 0 absent).
    assert resolve_label_base(domains, num_classes=4) == 0
    assert resolve_label_base([table(["cat", "dog"])]) == 0
    assert resolve_label_base(domains + [table(["cat"])], "auto") == 1


def test_explicit_base_is_checked_against_the_labels() -> None:
    domains = [table([1, 1], "amazon.mat"), table([0, 2], "dslr.mat")]
    with pytest.raises(FeatureFileError, match=r"dslr\.mat: label 0 is below the first class "
                                               r"id 1; use label_base=0"):
        resolve_label_base(domains, 1)
    assert resolve_label_base(domains, 0) == 0
    assert resolve_label_base(domains, "0") == 0
    with pytest.raises(FeatureFileError, match=r"dslr\.mat: label 2 is beyond the last of 2 "
                                               r"classes \(ids 0\.\.1"):
        resolve_label_base(domains, 0, num_classes=2)
    with pytest.raises(FeatureFileError, match=r"label -1 is below the first class id 0"):
        resolve_label_base([table([-1, 2])], "auto")


@pytest.mark.parametrize("bad", ["two", 2, -1, True, None, 1.0])
def test_unknown_label_base_lists_choices(bad: object) -> None:
    with pytest.raises(ValueError, match=r"valid choices: 'auto', 0, 1"):
        resolve_label_base([table([1, 2])], bad)  # type: ignore[arg-type]


def test_to_zero_based_shifts_ids_and_keeps_names() -> None:
    np.testing.assert_array_equal(to_zero_based(np.array([1, 3, 2]), 1), [0, 2, 1])
    np.testing.assert_array_equal(to_zero_based(np.array([0, 3]), 0), [0, 3])
    names = np.array(["cat", "dog"], dtype=object)
    assert to_zero_based(names, 1) is names
    with pytest.raises(ValueError, match="label 0 is below the base 1"):
        to_zero_based(np.array([0, 1]), 1)
