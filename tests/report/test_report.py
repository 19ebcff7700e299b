"""The report (``u2cdr report``): documents, figures and the decisions behind them.

A real grid runs once per module, inline, on a tiny image folder written here (two domains of
four classes × six 16-px images; ``pretrained`` and a one-epoch ``instdisc``; closed and open),
so the report reads the same ``result.json`` and ``features.npz`` files a real grid writes.
Decisions (which queries, which colours, which ranking) are checked on hand-made arrays.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from u2cdr.cli import main
from u2cdr.registry import ConfigError
from u2cdr.report import write_report
from u2cdr.report.averages import scenario_averages
from u2cdr.report.build import figure_stem
from u2cdr.report.cells import CellImages, find_baseline, load_cells, ranking_distance
from u2cdr.report.command import add_report_arguments, command_report
from u2cdr.report.document import latex_text, recorded_gaps
from u2cdr.report.figures import (DPI, bar_figure_inches, retrieval_figure_inches,
                                  retrieval_rows, subsample_rows, tsne_figure,
                                  tsne_figure_inches)
from u2cdr.report.retrieval import (CORRECT_COLOUR, PRIVATE_COLOUR, QUERY_COLOUR, WRONG_COLOUR,
                                    choose_queries, frame_colours, private_verdict, top_k_gallery)
from u2cdr.tables import build_tables, load_records
from u2cdr.tables.records import TIDY_COLUMNS
from u2cdr.tables.render import latex_escape, markdown_escape

CLASSES = ("c0", "c1", "c2", "c3")
IMAGES_PER_CLASS = 6
BACKBONE = {"type": "small_cnn", "in_channels": 3, "width": 4}
METHODS = [{"type": "pretrained", "backbone": BACKBONE, "batch_size": 16},
           {"type": "instdisc", "backbone": BACKBONE, "epochs": 1, "batch_size": 8, "lr": 0.01,
            "low_dim": 16}]
TOP_K = 4
QUERIES = 3


# ----- the tiny grid ------------------------------------------------------------------------------
def _write_folder(root: Path) -> Path:
    """``root/<domain>/<class>/img<i>.png``: one colour per class, a stripe per domain."""
    for domain_index, domain in enumerate(("a", "b")):
        for class_index, name in enumerate(CLASSES):
            rng = np.random.default_rng([domain_index, class_index])
            colour = np.array([60 * class_index, 255 - 60 * class_index, 40 + 80 * domain_index])
            for index in range(IMAGES_PER_CLASS):
                pixels = np.clip(colour + rng.normal(0, 20, (16, 16, 3)), 0, 255)
                pixels[domain_index * 8:domain_index * 8 + 4] = 255
                path = root / domain / name / f"img{index}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels.astype(np.uint8), "RGB").save(path)
    return root


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    """A finished grid: pretrained and instdisc, a→b, closed and open, seed 1."""
    base = tmp_path_factory.mktemp("report_grid")
    root = _write_folder(base / "data")
    dataset = {"type": "hf_domains", "root": str(root), "image_size": 16, "channels": 3,
               "augmentation": "none", "pairs": [["a", "b"]]}
    config = base / "grid.json"
    config.write_text(json.dumps({"methods": METHODS, "datasets": [dataset],
                                  "scenarios": ["closed", "open"], "seeds": [1]}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("U2CDR_CACHE", str(base / "cache"))
        assert main(["run", str(config), "--work-dir", str(base / "work"),
                     "--launcher", "inline"]) == 0
    return base / "work"


@pytest.fixture(scope="module")
def report(work_dir: Path, tmp_path_factory):
    """The report of the tiny grid, written once (both formats)."""
    out = tmp_path_factory.mktemp("report_out")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("U2CDR_CACHE", str(work_dir.parent / "cache"))
        files = write_report(work_dir, out, top_k=TOP_K, queries=QUERIES)
    return out, files


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (and a check that it is a PNG)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _pixels(inches: tuple[float, float]) -> tuple[int, int]:
    return round(inches[0] * DPI), round(inches[1] * DPI)


# ----- the documents ---------------------------------------------------------------------------------
def test_the_report_holds_every_table_caption_gap_and_environment_field(work_dir, report) -> None:
    out, files = report
    markdown = (out / "report.md").read_text()
    latex = (out / "report.tex").read_text()
    assert files.documents == (out / "report.md", out / "report.tex")
    tables = build_tables(load_records(work_dir), paper=True, delta=True)
    assert {table.scenario for table in tables} == {"closed", "open"}
    for table in tables:
        assert markdown_escape(table.caption) in markdown
        assert latex_escape(table.caption) in latex
    records = [cell.record for cell in load_cells(load_records(work_dir))]
    [instdisc] = [r for r in records if r["method"] == "instdisc" and r["scenario"] == "closed"]
    gaps = instdisc["method_info"]["gap_decisions"]
    assert len(gaps) >= 5, "instdisc records its GAP readings"
    assert recorded_gaps(instdisc) == {key: value if isinstance(value, str) else json.dumps(value)
                                       for key, value in gaps.items()}
    for key, text in recorded_gaps(instdisc).items():
        assert f"**{markdown_escape(key)}**: {markdown_escape(text)}" in markdown
        assert latex_text(text) in latex
    assert records[0]["env"]["python"] in markdown
    assert f"| python | {records[0]['env']['python']} | {len(records)} |" in markdown
    assert '"epochs": 1' in markdown  # instdisc's method_cfg, verbatim
    assert latex.startswith(r"\documentclass") and latex.rstrip().endswith(r"\end{document}")
    assert latex.count(r"\begin{figure}") == latex.count(r"\end{figure}") == len(files.figures) // 2


def test_every_linked_figure_exists_in_both_formats(report) -> None:
    out, files = report
    markdown = (out / "report.md").read_text()
    latex = (out / "report.tex").read_text()
    png_links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", markdown)
    pdf_includes = re.findall(r"\\includegraphics\[[^\]]*\]\{(figures/[^}]+\.pdf)\}", latex)
    # 2 bar charts (closed, open) + instdisc's retrieval grid and t-SNE per scenario.
    assert len(png_links) == len(pdf_includes) == 6
    assert sorted(Path(link).stem for link in png_links) == sorted(
        Path(link).stem for link in pdf_includes)
    for link in png_links:
        assert (out / link).is_file() and (out / link).with_suffix(".pdf").is_file()
    assert sorted(files.figures) == sorted({out / link for link in png_links}
                                           | {out / link for link in pdf_includes})
    assert not files.notes


def test_figures_are_valid_png_and_pdf_of_the_expected_size(report) -> None:
    out, _ = report
    figures = out / "figures"
    for scenario, rows in (("closed", 3), ("open", 3)):
        name = f"instdisc-hf-domains-{scenario}-a-b-seed1"
        assert figure_stem("instdisc", "hf_domains", scenario, "a", "b", "seed1") == name
        assert _png_size(figures / f"retrieval-{name}.png") == _pixels(
            retrieval_figure_inches(rows, TOP_K))
        # before (pretrained) and after (instdisc): two panels
        assert _png_size(figures / f"tsne-{name}.png") == _pixels(tsne_figure_inches(2))
    assert _png_size(figures / "averages-hf-domains-closed-uem.png") == _pixels(
        bar_figure_inches(methods=2, metrics=1))
    assert _png_size(figures / "averages-hf-domains-open-uem.png") == _pixels(
        bar_figure_inches(methods=2, metrics=2))
    for pdf in figures.glob("*.pdf"):
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF"), pdf
    assert len(list(figures.glob("*.pdf"))) == len(list(figures.glob("*.png"))) == 6


def test_retrieval_rows_show_real_images_and_frame_by_class(work_dir) -> None:
    cells = load_cells(load_records(work_dir))
    cell = next(c for c in cells if c.method == "instdisc" and c.record["scenario"] == "closed")
    features = cell.load_features()
    images = CellImages(cell.record["dataset_cfg"])
    rows = retrieval_rows(cell, features, images, queries=4, k=3)
    assert [row.query_caption for row in rows] == [f"query: {name}" for name in CLASSES]
    chosen = choose_queries(features.query_labels, features.gallery_labels, 4)
    top = top_k_gallery(features.query, features.gallery, chosen, 3, ranking_distance(cell.record))
    for row, query_index, gallery_indices in zip(rows, chosen, top):
        expected = [CORRECT_COLOUR if features.gallery_labels[g] == features.query_labels[query_index]
                    else WRONG_COLOUR for g in gallery_indices]
        assert list(row.colours.retrieved) == expected
        assert row.colours.query == QUERY_COLOUR
        shown = np.asarray(row.query_image.convert("RGB"))
        source = Path(images.dataset.root) / "a" / CLASSES[features.query_labels[query_index]]
        assert shown.shape == (16, 16, 3)
        assert any(np.array_equal(shown, np.asarray(Image.open(p).convert("RGB")))
                   for p in source.glob("*.png")), "the query tile is one of its class's images"


def test_flagged_queries_are_marked_private(work_dir) -> None:
    cells = load_cells(load_records(work_dir))
    cell = next(c for c in cells if c.method == "instdisc" and c.record["scenario"] == "open")
    saved = cell.load_features()
    assert saved.private_pred is not None and len(saved.private_pred) == len(saved.query)
    gallery_classes = set(saved.gallery_labels.tolist())
    flag_all = dataclasses.replace(saved, private_pred=np.ones(len(saved.query), dtype=bool))
    rows = retrieval_rows(cell, flag_all, CellImages(cell.record["dataset_cfg"]), queries=4, k=2)
    chosen = choose_queries(saved.query_labels, saved.gallery_labels, 4)
    assert all(row.colours.query == PRIVATE_COLOUR for row in rows)
    for row, index in zip(rows, chosen):
        right = saved.query_labels[index] not in gallery_classes
        assert row.query_caption.endswith("flagged private (right)" if right
                                          else "flagged private (wrong)")
    flag_none = dataclasses.replace(saved, private_pred=np.zeros(len(saved.query), dtype=bool))
    rows = retrieval_rows(cell, flag_none, CellImages(cell.record["dataset_cfg"]), queries=4, k=2)
    assert all(row.colours.query == QUERY_COLOUR for row in rows)
    assert sum(row.query_caption.endswith("private class, not flagged") for row in rows) == 2


def test_the_baseline_map_is_computed_once_per_split(work_dir, tmp_path) -> None:
    cells = load_cells(load_records(work_dir))
    cell = next(c for c in cells if c.method == "instdisc" and c.record["scenario"] == "closed")
    baseline = find_baseline(cells, cell)
    assert baseline is not None and baseline.method == "pretrained"
    assert baseline.split_identity == cell.split_identity
    memo = {}
    before = (baseline, baseline.load_features())
    tsne_figure(cell, cell.load_features(), tmp_path / "first", list(CLASSES), before=before,
                baseline_panels=memo)
    [first] = memo.values()
    assert first.title == "before: pretrained" and len(first.points) == 48
    tsne_figure(cell, cell.load_features(), tmp_path / "second", list(CLASSES), before=before,
                baseline_panels=memo)
    assert list(memo.values()) == [first] and memo[baseline.directory] is first


# ----- decisions on toy arrays -----------------------------------------------------------------------
def test_frame_colours_on_a_toy_case() -> None:
    answered = frame_colours(3, np.array([3, 1, 3, 0]), flagged_private=False)
    assert answered.query == QUERY_COLOUR
    assert answered.retrieved == (CORRECT_COLOUR, WRONG_COLOUR, CORRECT_COLOUR, WRONG_COLOUR)
    flagged = frame_colours(2, np.array([1, 2]), flagged_private=True)
    assert flagged.query == PRIVATE_COLOUR and flagged.retrieved == (WRONG_COLOUR, CORRECT_COLOUR)


def test_private_verdict_reads_the_truth_against_the_flag() -> None:
    gallery = np.array([0, 0, 1])
    assert private_verdict(2, gallery, True) == "flagged private (right)"
    assert private_verdict(1, gallery, True) == "flagged private (wrong)"
    assert private_verdict(2, gallery, False) == "private class, not flagged"
    assert private_verdict(0, gallery, False) == ""


def test_choose_queries_alternates_shared_and_private_classes() -> None:
    query_labels = np.array([2, 0, 0, 1, 3, 2, 1])
    gallery_labels = np.array([1, 0, 0])
    # shared 0, 1; private 2, 3 → classes 0, 2, 1, 3 → their first rows 1, 0, 3, 4
    assert choose_queries(query_labels, gallery_labels, 4).tolist() == [1, 0, 3, 4]
    assert choose_queries(query_labels, gallery_labels, 3).tolist() == [1, 0, 3]
    assert choose_queries(query_labels, gallery_labels, 9).tolist() == [1, 0, 3, 4]
    with pytest.raises(ValueError, match="at least 1"):
        choose_queries(query_labels, gallery_labels, 0)


def test_top_k_ranks_as_the_protocol_says() -> None:
    query = np.array([[1.0, 0.0]])
    # cosine: [10, 1] (cos 0.995) > [1, 0.5] (0.894) > [-1, 0] (−1);
    # Euclidean: [1, 0.5] (0.5) < [-1, 0] (2) < [10, 1] (9.06).
    gallery = np.array([[10.0, 1.0], [1.0, 0.5], [-1.0, 0.0]])
    assert top_k_gallery(query, gallery, np.array([0]), 2, "cosine").tolist() == [[0, 1]]
    assert top_k_gallery(query, gallery, np.array([0]), 2, "euclidean").tolist() == [[1, 2]]
    assert top_k_gallery(query, gallery, np.array([0]), 9, "cosine").shape == (1, 3)
    assert ranking_distance({"protocol": {"distance": "euclidean", "pk_similarity": "cosine"}}) \
        == "cosine"
    assert ranking_distance({"protocol": {"name": "coda", "distance": "euclidean"}}) == "euclidean"
    assert ranking_distance({}) == "cosine"


def test_bar_averages_are_the_tables_avg_with_std_over_seeds() -> None:
    def row(method, query, seed, value, metric="map_all"):
        return {"method": method, "method_type": method, "family": "f", "uses_labels": False,
                "dataset": "digits", "query": query, "gallery": "uci" if query == "mnist"
                else "mnist", "scenario": "closed", "seed": seed, "metric": metric,
                "value": value, "status": "done", "skip_reason": None, "protocol": "uem",
                "flags": "{}", "inputs": None, "key": None, "path": f"{method}{query}{seed}"}
    records = pd.DataFrame([row("a", "mnist", 1, 10.0), row("a", "mnist", 2, 20.0),
                            row("a", "uci", 1, 30.0), row("a", "uci", 2, 50.0),
                            row("b", "mnist", 1, 40.0)], columns=list(TIDY_COLUMNS))
    [group] = scenario_averages(records)
    [bar] = group.bars
    # pair means 15 and 40 → 27.5; per-seed averages 20 and 35 → std 15/√2
    assert (bar.method, bar.mean, bar.seeds) == ("a", 27.5, 2)
    assert bar.std == pytest.approx(15 / np.sqrt(2))
    assert group.without_average == ("b",) and group.pairs == ("mnist→uci", "uci→mnist")


def test_tsne_subsample_keeps_each_domains_share_under_the_limit() -> None:
    query, gallery = subsample_rows(5000, 1797, 2000, seed=2024)
    # 2000 · 5000 / 6797 = 1471.2 → 1471 queries, the remaining 529 gallery items
    assert (len(query), len(gallery)) == (1471, 529)
    assert len(np.unique(query)) == 1471 and np.all(np.diff(query) > 0) and query.max() < 5000
    assert len(np.unique(gallery)) == 529 and gallery.max() < 1797
    again = subsample_rows(5000, 1797, 2000, seed=2024)
    assert np.array_equal(again[0], query) and np.array_equal(again[1], gallery)
    small = subsample_rows(30, 20, 2000, seed=1)
    assert small[0].tolist() == list(range(30)) and small[1].tolist() == list(range(20))


def test_latex_text_maps_the_characters_gap_texts_use() -> None:
    assert latex_text("δ over θ (§8.4), Δ ≥ 2 & x_1") == \
        r"$\delta$ over $\theta$ (\S{}8.4), $\Delta$ $\geq$ 2 \& x\_1"
    assert all(ord(c) < 128 for c in latex_text("αβγ ω Ω Α ς …"))


# ----- what is not drawn, and bad options ------------------------------------------------------------
def test_a_cell_without_features_is_named_in_a_note(work_dir, tmp_path) -> None:
    copy = tmp_path / "work"
    shutil.copytree(work_dir, copy)
    [removed] = list((copy / "runs").glob("*/closed/*/instdisc/*/features.npz"))
    removed.unlink()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("U2CDR_CACHE", str(work_dir.parent / "cache"))
        files = write_report(copy, formats=("md",), methods=["instdisc"], queries=2, top_k=2)
    assert files.documents == (copy / "report" / "report.md",)
    [note] = files.notes
    assert "1 cell(s) without features.npz" in note and "instdisc hf_domains/closed a→b" in note
    markdown = files.documents[0].read_text()
    assert markdown_escape(note) in markdown
    assert "retrieval-instdisc-hf-domains-open" in markdown
    assert "retrieval-instdisc-hf-domains-closed" not in markdown


def test_a_feature_dataset_has_no_images_and_says_why(tmp_path) -> None:
    for domain in ("x", "y"):
        np.savez(tmp_path / f"{domain}.npz", features=np.eye(3, dtype=np.float32),
                 labels=np.arange(3))
    images = CellImages({"type": "features", "root": str(tmp_path)})
    assert images.reason and "feature vectors only" in images.reason
    with pytest.raises(ValueError, match="feature vectors only"):
        images.image("x", 0)


def test_bad_options_name_the_value_and_the_choices(work_dir, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"'nope' has no finished cell.*valid choices: "
                                          r"(instdisc, pretrained|pretrained, instdisc)"):
        write_report(work_dir, tmp_path, methods=["nope"])
    with pytest.raises(ConfigError, match="--top-k: expected a positive integer, got 0"):
        write_report(work_dir, tmp_path, top_k=0)
    with pytest.raises(ConfigError, match="--format: .*valid choices: md, latex"):
        write_report(work_dir, tmp_path, formats=("html",))
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args([str(work_dir), "--queries", "0"])


def test_the_command_writes_markdown_only_when_asked(work_dir, tmp_path, capsys) -> None:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    args = parser.parse_args([str(work_dir), "--format", "md", "--methods", "pretrained",
                              "--queries", "2", "--top-k", "2", "--out", str(tmp_path / "r")])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("U2CDR_CACHE", str(work_dir.parent / "cache"))
        assert command_report(args) == 0
    assert (tmp_path / "r" / "report.md").is_file() and not (tmp_path / "r" / "report.tex").exists()
    assert f"wrote {tmp_path / 'r' / 'report.md'}" in capsys.readouterr().err
    markdown = (tmp_path / "r" / "report.md").read_text()
    # pretrained asked for: its own figures, and its t-SNE has no "before" panel
    assert "figures/retrieval-pretrained-hf-domains-closed-a-b-seed1.png" in markdown
    assert "coloured by class; pretrained only." in markdown
