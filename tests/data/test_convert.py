"""``u2cdr convert``: feature files → one parquet file, read back exactly."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.io

from u2cdr.data import convert
from u2cdr.data.convert import (PARQUET_COLUMNS, convert_features, read_class_names,
                                write_feature_parquet)
from u2cdr.data.feature_files import (CLASS_NAMES_METADATA_KEY, FeatureFileError, FeatureTable,
                                      read_feature_class_names, read_feature_parquet)

AMAZON = np.arange(12, dtype=np.float64).reshape(3, 4) / 8.0
DSLR = -np.arange(8, dtype=np.float64).reshape(2, 4)


@pytest.fixture
def office_folder(tmp_path: Path) -> Path:
    """Two 1-based MATLAB domains stored D x N; 'DSLR' lacks class 1, 'Amazon' has it."""
    folder = tmp_path / "office"
    folder.mkdir()
    scipy.io.savemat(folder / "Amazon.mat", {"fts": AMAZON.T, "labels": np.array([[1], [3], [2]])})
    scipy.io.savemat(folder / "DSLR.mat", {"fts": DSLR.T, "labels": np.array([[3], [2]])})
    (folder / "README.txt").write_text("features from a ResNet-50\n")
    return folder


def test_folder_of_mat_files_round_trips(office_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "office.parquet"

    summary = convert_features(office_folder, out)

    assert summary == {
        "domains": {"amazon": {"rows": 3, "dim": 4, "source": str(office_folder / "Amazon.mat")},
                    "dslr": {"rows": 2, "dim": 4, "source": str(office_folder / "DSLR.mat")}},
        "label_base": 1, "out": str(out), "num_classes": None}
    arrow_table = pq.read_table(out)
    assert tuple(arrow_table.column_names) == PARQUET_COLUMNS
    assert arrow_table.column("label").type == pa.int64()
    assert arrow_table.column("domain").to_pylist() == ["amazon"] * 3 + ["dslr"] * 2
    assert read_feature_class_names(out) is None
    by_domain = read_feature_parquet(out)
    assert list(by_domain) == ["amazon", "dslr"]
    np.testing.assert_array_equal(by_domain["amazon"].features, AMAZON.astype(np.float32))
    np.testing.assert_array_equal(by_domain["dslr"].features, DSLR.astype(np.float32))
    np.testing.assert_array_equal(by_domain["amazon"].labels, [0, 2, 1])
    np.testing.assert_array_equal(by_domain["dslr"].labels, [2, 1])
    assert not list(out.parent.glob("*.tmp"))


def test_explicit_zero_base_keeps_ids(office_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "office.parquet"
    assert convert_features(office_folder, out, label_base=0)["label_base"] == 0
    np.testing.assert_array_equal(read_feature_parquet(out)["amazon"].labels, [1, 3, 2])


def test_class_names_file_maps_ids_to_names(office_folder: Path, tmp_path: Path) -> None:
    names_file = tmp_path / "classes.txt"
    names_file.write_text("back_pack\n\nbike\n  calculator \n")
    out = tmp_path / "office.parquet"

    summary = convert_features(office_folder, out, class_names_file=names_file)

    assert (summary["label_base"], summary["num_classes"]) == (1, 3)
    assert pq.read_table(out).column("label").type == pa.string()
    assert read_feature_class_names(out) == ["back_pack", "bike", "calculator"]
    assert json.loads(pq.read_schema(out).metadata[CLASS_NAMES_METADATA_KEY]) == \
        ["back_pack", "bike", "calculator"]
    by_domain = read_feature_parquet(out)
    assert by_domain["amazon"].labels.tolist() == ["back_pack", "calculator", "bike"]
    assert by_domain["dslr"].labels.tolist() == ["calculator", "bike"]


def test_ids_beyond_the_class_names_are_errors(tmp_path: Path) -> None:
    source = tmp_path / "web.npz"
    np.savez(source, X=AMAZON, y=np.array([0, 1, 2]))
    names_file = tmp_path / "classes.json"
    names_file.write_text(json.dumps(["a", "b"]))
    with pytest.raises(FeatureFileError, match=r"web\.npz: label 2 is beyond the last of 2 "
                                               r"classes"):
        convert_features(source, tmp_path / "out.parquet", class_names_file=names_file)
    assert not (tmp_path / "out.parquet").exists()


def test_write_rejects_out_of_range_ids_against_names(tmp_path: Path) -> None:
    tables = {"web": FeatureTable(AMAZON.astype(np.float32), np.array([0, 5, 1]), "web.npz",
                                  "X", "y")}
    with pytest.raises(FeatureFileError, match=r"web\.npz: zero-based label 5 at row 1 is out "
                                               r"of range \(valid ids: 0\.\.2\)"):
        write_feature_parquet(tables, tmp_path / "out.parquet", class_names=["a", "b", "c"])


def test_string_labels_are_kept_and_checked_against_names(tmp_path: Path) -> None:
    tables = {"art": FeatureTable(DSLR.astype(np.float32), np.array(["cup", "pen"], object),
                                  "art.csv", None, "label")}
    out = write_feature_parquet(tables, tmp_path / "art.parquet")
    assert read_feature_parquet(out)["art"].labels.tolist() == ["cup", "pen"]
    with pytest.raises(FeatureFileError, match=r"art\.csv: labels not in the class names file: "
                                               r"pen"):
        write_feature_parquet(tables, tmp_path / "art2.parquet", class_names=["cup", "mug"])


def test_mixing_names_and_ids_needs_class_names(tmp_path: Path) -> None:
    tables = {"art": FeatureTable(DSLR.astype(np.float32), np.array(["cup", "pen"], object),
                                  "art.csv", None, "label"),
              "web": FeatureTable(DSLR.astype(np.float32), np.array([0, 1]), "web.npz", "X", "y")}
    with pytest.raises(FeatureFileError, match=r"art\.csv \(names\), web\.npz \(ids\)"):
        write_feature_parquet(tables, tmp_path / "out.parquet")
    out = write_feature_parquet(tables, tmp_path / "out.parquet", class_names=["pen", "cup"])
    assert read_feature_parquet(out)["web"].labels.tolist() == ["pen", "cup"]


def test_dims_must_agree(office_folder: Path, tmp_path: Path) -> None:
    scipy.io.savemat(office_folder / "webcam.mat", {"fts": np.ones((2, 5)),
                                                    "labels": np.array([1, 2])})
    with pytest.raises(FeatureFileError) as caught:
        convert_features(office_folder, tmp_path / "out.parquet")
    message = str(caught.value)
    assert "feature dimensions differ" in message
    assert f"{office_folder / 'Amazon.mat'} (amazon): 4" in message
    assert f"{office_folder / 'webcam.mat'} (webcam): 5" in message


def test_folder_without_feature_files_lists_its_content(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    (folder / "feats.npy").write_bytes(b"x")
    with pytest.raises(FeatureFileError, match=r"no feature files \(valid suffixes: \.mat, .*"
                                               r"the folder holds: feats\.npy, notes\.txt"):
        convert_features(folder, tmp_path / "out.parquet")


def test_single_file_domain_name_and_duplicate_domains(office_folder: Path,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "one.parquet"
    summary = convert_features(office_folder / "DSLR.mat", out, domain="My DSLR")
    assert list(summary["domains"]) == ["my_dslr"]
    # Alone, DSLR's labels (3, 2) do not show a 1-based file: auto keeps them.
    assert summary["label_base"] == 0
    np.testing.assert_array_equal(read_feature_parquet(out)["my_dslr"].labels, [3, 2])
    np.savez(office_folder / "amazon.npz", fts=AMAZON, labels=np.array([0, 1, 2]))
    with pytest.raises(FeatureFileError, match=r"domain 'amazon' comes from both .*Amazon\.mat "
                                               r"and .*amazon\.npz"):
        convert_features(office_folder, tmp_path / "two.parquet")
    with pytest.raises(ValueError, match="names the domain of a single file"):
        convert_features(office_folder, tmp_path / "three.parquet", domain="x")


def test_converted_parquet_converts_again_unchanged(office_folder: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.parquet"
    convert_features(office_folder, first)
    second = tmp_path / "second.parquet"
    summary = convert_features(first, second)
    assert summary["label_base"] == 0  # zero-based now: class 0 is present
    assert pq.read_table(second).equals(pq.read_table(first))


def test_failed_write_keeps_the_previous_file(office_folder: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "office.parquet"
    convert_features(office_folder, out)
    before = out.read_bytes()

    def broken_write(table: pa.Table, where: str) -> None:
        Path(where).write_bytes(b"PAR1 half written")
        raise OSError("disk full")

    monkeypatch.setattr(convert.pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        convert_features(office_folder, out, label_base=0)
    assert out.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir() if path.is_file()] == ["office.parquet"]


def test_output_must_be_parquet(office_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must be a \.parquet file path, got .*out\.csv"):
        convert_features(office_folder, tmp_path / "out.csv")


def test_read_class_names_formats_and_errors(tmp_path: Path) -> None:
    text = tmp_path / "names.txt"
    text.write_text("cat\n\n dog \n")
    assert read_class_names(text) == ["cat", "dog"]
    listed = tmp_path / "names.json"
    listed.write_text('["cat", "dog", "emu"]')
    assert read_class_names(listed) == ["cat", "dog", "emu"]
    repeated = tmp_path / "repeated.txt"
    repeated.write_text("cat\ndog\ncat\n")
    with pytest.raises(FeatureFileError, match=r"repeated\.txt: class names must be unique; "
                                               r"repeated: cat"):
        read_class_names(repeated)
    not_a_list = tmp_path / "object.json"
    not_a_list.write_text('{"cat": 0}')
    with pytest.raises(FeatureFileError, match="must hold a list of strings"):
        read_class_names(not_a_list)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n")
    with pytest.raises(FeatureFileError, match="lists no names"):
        read_class_names(blank)
