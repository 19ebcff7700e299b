"""The report's figures, each saved as PNG and PDF: top-k retrievals (the UEM paper's Figure 4),
t-SNE of both domains before and after training, and per-scenario bar charts of the Avg column.

Figures are ``matplotlib.figure.Figure`` objects drawn on the Agg canvas, never through
``pyplot``: no global state, no display needed, and a report can run in a worker process. Sizes
are fixed in inches at ``DPI`` (no tight bounding box), so a figure's pixel size is known from
its content count (``retrieval_figure_inches``, ``tsne_figure_inches``, ``bar_figure_inches``).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from u2cdr.evaluation.retrieval import prepare_features
from u2cdr.report.averages import ScenarioAverages
from u2cdr.report.cells import CellFeatures, CellImages, ReportCell, ranking_distance
from u2cdr.report.retrieval import (PRIVATE_COLOUR, TileColours, choose_queries, frame_colours,
                                    private_verdict, top_k_gallery)
from u2cdr.tables.labels import SCENARIO_NAMES, dataset_name, metric_name

DPI = 100
FORMATS = ("png", "pdf")
TILE_INCHES = (1.3, 1.6)           # width, height of one image tile with its caption
RETRIEVAL_HEADER_INCHES = 0.95     # title and colour key above the tiles
TSNE_PANEL_INCHES = 5.0
TSNE_LEGEND_INCHES = 1.9
TSNE_HEADER_INCHES = 0.6
TSNE_MAX_POINTS = 2000
BAR_INCHES_PER_BAR = 0.55
BAR_MIN_PANEL_INCHES = 3.0
BAR_HEIGHT_INCHES = 4.2
BAR_MIN_FIGURE_INCHES = 6.0        # room for the title
TITLE_CHARACTERS_PER_INCH = 14     # at 9 pt, to wrap titles to the figure's width
MIN_BAR_SLOTS = 3                  # a lone bar keeps the width of one of three
FRAME_WIDTH = 4.0
DOMAIN_MARKERS = ("o", "^")        # query domain, gallery domain
DOMAIN_MARKER_SIZES = (9, 14)      # a triangle of equal area reads smaller than a circle
MAX_LEGEND_CLASSES = 20
GREYSCALE_MODES = frozenset({"1", "L", "I", "I;16", "F"})


def save_figure(figure: Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` (at ``DPI``) and ``stem.pdf``; returns both paths."""
    FigureCanvasAgg(figure)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in FORMATS:
        path = stem.with_suffix(f".{suffix}")
        # No creation date in the PDF, so an unchanged report rewrites identical files.
        metadata = {"CreationDate": None} if suffix == "pdf" else None
        figure.savefig(path, dpi=DPI, format=suffix, metadata=metadata)
        written.append(path)
    return written


def _pixels(image: Image.Image) -> tuple[np.ndarray, str | None]:
    """An image as an array and the colour map it needs (grey for one-channel images)."""
    if image.mode in GREYSCALE_MODES:
        return np.asarray(image.convert("L")), "gray"
    return np.asarray(image.convert("RGB")), None


# ----- top-k retrievals (Figure 4) ----------------------------------------------------------------
@dataclass(frozen=True)
class RetrievalRow:
    """One query and its top-k gallery items, with captions and frame colours."""

    query_image: Image.Image
    query_caption: str
    retrieved_images: tuple[Image.Image, ...]
    retrieved_captions: tuple[str, ...]
    colours: TileColours


def retrieval_figure_inches(rows: int, k: int) -> tuple[float, float]:
    """Figure size of ``rows`` queries with ``k`` retrievals each."""
    return ((k + 1) * TILE_INCHES[0], rows * TILE_INCHES[1] + RETRIEVAL_HEADER_INCHES)


def _draw_tile(axes, image: Image.Image, caption: str, frame: str, caption_colour: str) -> None:
    pixels, cmap = _pixels(image)
    axes.imshow(pixels, cmap=cmap, vmin=0 if cmap else None, vmax=255 if cmap else None,
                interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_edgecolor(frame)
        spine.set_linewidth(FRAME_WIDTH)
    axes.set_title(caption, fontsize=8, color=caption_colour, pad=3)


def draw_retrieval_grid(rows: Sequence[RetrievalRow], title: str, stem: Path) -> list[Path]:
    """One row per query: the query tile, then its retrievals framed green (right) or red."""
    if not rows:
        raise ValueError("a retrieval figure needs at least one query")
    k = max(len(row.retrieved_images) for row in rows)
    width, height = retrieval_figure_inches(len(rows), k)
    figure = Figure(figsize=(width, height))
    top = 1 - RETRIEVAL_HEADER_INCHES / height
    grid = figure.add_gridspec(len(rows), k + 1, left=0.02, right=0.98, bottom=0.02, top=top,
                               wspace=0.15, hspace=0.45)
    figure.suptitle(textwrap.fill(title, width=int(width * TITLE_CHARACTERS_PER_INCH)),
                    fontsize=9, y=1 - 0.08 / height, va="top")
    figure.text(0.5, 1 - 0.45 / height,
                textwrap.fill("frame: green = same class as the query, red = another class; "
                              "query: blue = answered, grey = flagged private (returns nothing)",
                              width=int(width * TITLE_CHARACTERS_PER_INCH * 1.25)),
                ha="center", va="top", fontsize=7)
    for index, row in enumerate(rows):
        query_private = row.colours.query == PRIVATE_COLOUR
        _draw_tile(figure.add_subplot(grid[index, 0]), row.query_image, row.query_caption,
                   row.colours.query, PRIVATE_COLOUR if query_private else "black")
        for rank, (image, caption, colour) in enumerate(
                zip(row.retrieved_images, row.retrieved_captions, row.colours.retrieved)):
            _draw_tile(figure.add_subplot(grid[index, rank + 1]), image, caption, colour, colour)
    return save_figure(figure, stem)


def retrieval_rows(cell: ReportCell, features: CellFeatures, images: CellImages, queries: int,
                   k: int) -> list[RetrievalRow]:
    """The figure's rows for one cell: chosen queries, their top-k, images and verdicts."""
    record = cell.record
    chosen = choose_queries(features.query_labels, features.gallery_labels, queries)
    top = top_k_gallery(features.query, features.gallery, chosen, k, ranking_distance(record))
    rows = []
    for query_index, gallery_indices in zip(chosen, top):
        label = int(features.query_labels[query_index])
        flagged = bool(features.private_pred[query_index]) if features.private_pred is not None \
            else False
        retrieved_labels = features.gallery_labels[gallery_indices]
        verdict = private_verdict(label, features.gallery_labels, flagged) \
            if record["scenario"] == "open" else ""
        caption = f"query: {images.class_name(label)}" + (f"\n{verdict}" if verdict else "")
        rows.append(RetrievalRow(
            query_image=images.image(record["query"], _source_row(features.query_rows,
                                                                  query_index)),
            query_caption=caption,
            retrieved_images=tuple(images.image(record["gallery"],
                                                _source_row(features.gallery_rows, index))
                                   for index in gallery_indices),
            retrieved_captions=tuple(f"#{rank}: {images.class_name(int(other))}"
                                     for rank, other in enumerate(retrieved_labels, start=1)),
            colours=frame_colours(label, retrieved_labels, flagged)))
    return rows


def _source_row(rows: np.ndarray | None, index: int) -> int:
    """The dataset row of a cell's ``index``-th item (identity for files without rows)."""
    return int(index if rows is None else rows[index])


def retrieval_figure(cell: ReportCell, features: CellFeatures, images: CellImages, stem: Path,
                     *, queries: int = 6, k: int = 5) -> list[Path]:
    """Figure 4 for one cell: ``queries`` queries of different classes and their top ``k``."""
    record = cell.record
    title = (f"{cell.method}: top-{k} retrievals, {dataset_name(record['dataset'])} "
             f"{record['query']}→{record['gallery']}, {SCENARIO_NAMES[record['scenario']]}, "
             f"seed {record['seed']} (ranked by {ranking_distance(record)})")
    return draw_retrieval_grid(retrieval_rows(cell, features, images, queries, k), title, stem)


# ----- t-SNE before / after training --------------------------------------------------------------
@dataclass(frozen=True)
class TsnePanel:
    """One t-SNE map: ``points [N, 2]``, each point's class id and domain (0 query, 1 gallery)."""

    title: str
    points: np.ndarray
    labels: np.ndarray
    domains: np.ndarray


def subsample_rows(num_query: int, num_gallery: int, limit: int, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted query and gallery indices, at most ``limit`` in all, each domain in its share.

    t-SNE costs O(N log N) per iteration; ~2000 points keep a map to seconds. Both domains
    keep their proportion so the smaller one is not drowned out or inflated.
    """
    total = num_query + num_gallery
    rng = np.random.default_rng(seed)
    if total <= limit:
        return np.arange(num_query), np.arange(num_gallery)
    keep_query = int(round(limit * num_query / total))
    keep_gallery = limit - keep_query
    return (np.sort(rng.choice(num_query, keep_query, replace=False)),
            np.sort(rng.choice(num_gallery, keep_gallery, replace=False)))


def tsne_panel(title: str, features: CellFeatures, query_rows: np.ndarray,
               gallery_rows: np.ndarray, distance: str, seed: int) -> TsnePanel:
    """Embed the chosen rows of both domains together in 2-D (sklearn t-SNE).

    The features are prepared as the protocol ranks them (L2-normalised for cosine), so the
    map shows the geometry retrieval used. t-SNE runs on one thread: its Barnes-Hut gradient
    sums in thread order (one thread gives the same map every time), and beside a running grid
    OpenMP's spinning threads cost ~5× the CPU (2000 digits points: 5.6 s on one thread,
    29 s on two busy cores).
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    stacked = np.concatenate([prepare_features(features.query[query_rows], distance),
                              prepare_features(features.gallery[gallery_rows], distance)])
    if len(stacked) < 3:
        raise ValueError(f"t-SNE needs at least 3 points, got {len(stacked)}")
    perplexity = float(min(30.0, (len(stacked) - 1) / 3))
    with threadpool_limits(limits=1):
        points = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                      random_state=seed).fit_transform(stacked.astype(np.float64))
    labels = np.concatenate([features.query_labels[query_rows],
                             features.gallery_labels[gallery_rows]])
    domains = np.concatenate([np.zeros(len(query_rows), dtype=np.int64),
                              np.ones(len(gallery_rows), dtype=np.int64)])
    return TsnePanel(title, points, labels, domains)


def tsne_figure_inches(panels: int) -> tuple[float, float]:
    return (panels * TSNE_PANEL_INCHES + TSNE_LEGEND_INCHES,
            TSNE_PANEL_INCHES + TSNE_HEADER_INCHES)


def distinct_colours(labels: Sequence[int]) -> dict[int, tuple]:
    """A distinct colour per id (classes in t-SNE, methods in bar charts): tab10 / tab20, a
    sampled turbo map beyond 20."""
    classes = sorted({int(label) for label in labels})
    if len(classes) <= 10:
        palette = colormaps["tab10"].colors
    elif len(classes) <= 20:
        palette = colormaps["tab20"].colors
    else:
        palette = [colormaps["turbo"](value) for value in np.linspace(0, 1, len(classes))]
    return {label: palette[index] for index, label in enumerate(classes)}


def draw_tsne(panels: Sequence[TsnePanel], class_names: Sequence[str],
              domain_names: tuple[str, str], title: str, stem: Path) -> list[Path]:
    """Panels side by side; colour = class, marker = domain (circle query, triangle gallery)."""
    if not panels:
        raise ValueError("a t-SNE figure needs at least one panel")
    width, height = tsne_figure_inches(len(panels))
    figure = Figure(figsize=(width, height))
    colours = distinct_colours(np.concatenate([panel.labels for panel in panels]))
    panel_width = TSNE_PANEL_INCHES / width
    for index, panel in enumerate(panels):
        axes = figure.add_axes((index * panel_width + 0.02 * panel_width, 0.03,
                                0.94 * panel_width, 1 - (TSNE_HEADER_INCHES + 0.35) / height))
        for domain, (marker, size) in enumerate(zip(DOMAIN_MARKERS, DOMAIN_MARKER_SIZES)):
            chosen = panel.domains == domain
            axes.scatter(panel.points[chosen, 0], panel.points[chosen, 1], s=size, marker=marker,
                         c=[colours[int(label)] for label in panel.labels[chosen]],
                         alpha=0.75, linewidths=0)
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_title(panel.title, fontsize=9)
    figure.suptitle(title, fontsize=10, y=1 - 0.1 / height, va="top")
    handles = [Line2D([], [], linestyle="", marker=marker, color="black", label=name)
               for marker, name in zip(DOMAIN_MARKERS, domain_names)]
    named = sorted(colours)
    if len(named) <= MAX_LEGEND_CLASSES:
        handles += [Line2D([], [], linestyle="", marker="s", color=colours[label],
                           label=class_names[label] if 0 <= label < len(class_names)
                           else str(label)) for label in named]
    legend_left = len(panels) * panel_width
    figure.legend(handles=handles, loc="upper left", fontsize=7, frameon=False,
                  bbox_to_anchor=(legend_left, 1 - TSNE_HEADER_INCHES / height),
                  title=("domain / class" if len(named) <= MAX_LEGEND_CLASSES
                         else f"domain ({len(named)} classes)"), title_fontsize=8)
    return save_figure(figure, stem)


def tsne_figure(cell: ReportCell, features: CellFeatures, stem: Path, class_names: Sequence[str],
                *, before: tuple[ReportCell, CellFeatures] | None = None,
                limit: int = TSNE_MAX_POINTS,
                baseline_panels: dict[Path, TsnePanel] | None = None) -> list[Path]:
    """The cell's features after training, beside the baseline's (``before``) when given.

    Both maps use the same sampled rows when the two cells hold the same rows (they do for the
    same split and seed), so the panels compare the same images. ``baseline_panels`` keeps the
    baseline's map by its folder: every method on one split shares it, so it is computed once.
    """
    record = cell.record
    seed = int(record["seed"])
    distance = ranking_distance(record)
    query_rows, gallery_rows = subsample_rows(len(features.query), len(features.gallery),
                                              limit, seed)
    panels = []
    if before is not None:
        baseline, baseline_features = before
        same_rows = (len(baseline_features.query) == len(features.query)
                     and len(baseline_features.gallery) == len(features.gallery))
        rows = (query_rows, gallery_rows) if same_rows else subsample_rows(
            len(baseline_features.query), len(baseline_features.gallery), limit, seed)
        memo = {} if baseline_panels is None else baseline_panels
        if baseline.directory not in memo:
            memo[baseline.directory] = tsne_panel(f"before: {baseline.method}",
                                                  baseline_features, *rows,
                                                  ranking_distance(baseline.record), seed)
        panels.append(memo[baseline.directory])
    panels.append(tsne_panel(f"after: {cell.method}", features, query_rows, gallery_rows,
                             distance, seed))
    title = (f"t-SNE of {dataset_name(record['dataset'])} {record['query']} (query) and "
             f"{record['gallery']} (gallery), {SCENARIO_NAMES[record['scenario']]}, seed {seed}; "
             f"{len(query_rows) + len(gallery_rows)} points")
    return draw_tsne(panels, class_names, (f"{record['query']} (query)",
                                           f"{record['gallery']} (gallery)"), title, stem)


# ----- bar charts of the Avg column ---------------------------------------------------------------
def bar_figure_inches(methods: int, metrics: int) -> tuple[float, float]:
    panel = max(BAR_MIN_PANEL_INCHES, methods * BAR_INCHES_PER_BAR + 0.8)
    return (max(BAR_MIN_FIGURE_INCHES, metrics * panel), BAR_HEIGHT_INCHES)


def draw_bar_chart(group: ScenarioAverages, stem: Path) -> list[Path]:
    """One panel per shown metric, one bar per method (its Avg over pairs), ± std over seeds."""
    methods = list(dict.fromkeys(bar.method for bar in group.bars))
    if not methods:
        raise ValueError(f"{group.name}: no method has an average over every pair")
    size = bar_figure_inches(len(methods), len(group.metrics))
    figure = Figure(figsize=size, layout="constrained")
    palette = distinct_colours(range(len(methods)))
    for index, metric in enumerate(group.metrics):
        axes = figure.add_subplot(1, len(group.metrics), index + 1)
        bars = {bar.method: bar for bar in group.bars if bar.metric == metric}
        positions = np.arange(len(methods))
        means = [bars[m].mean if m in bars else 0.0 for m in methods]
        errors = [bars[m].std if m in bars and bars[m].std is not None else 0.0 for m in methods]
        drawn = axes.bar(positions, means, color=[palette[i] for i in range(len(methods))],
                         edgecolor="black", linewidth=0.5)
        with_std = [i for i, m in enumerate(methods) if m in bars and bars[m].std is not None]
        if with_std:  # one seed has no spread: no error bar rather than a zero-length one
            axes.errorbar(positions[with_std], [means[i] for i in with_std],
                          yerr=[errors[i] for i in with_std], fmt="none", ecolor="black",
                          capsize=3, linewidth=0.8)
        axes.bar_label(drawn, labels=[f"{bars[m].mean:.1f}" if m in bars else "–"
                                      for m in methods], fontsize=7, padding=2)
        axes.set_xticks(positions, methods, rotation=35, ha="right", fontsize=8)
        margin = max(0, MIN_BAR_SLOTS - len(methods)) / 2  # few bars stay centred and narrow
        axes.set_xlim(-0.5 - margin, len(methods) - 0.5 + margin)
        axes.set_ylabel(f"{metric_name(metric, group.scenario)} (%)", fontsize=8)
        axes.set_ylim(0, max(100.0, max(mean + error for mean, error in zip(means, errors)) * 1.1))
        axes.tick_params(axis="y", labelsize=7)
        axes.grid(axis="y", linewidth=0.3)
        axes.set_axisbelow(True)
    pairs = ", ".join(group.pairs)
    spread = ("error bar = std over seeds" if any(bar.std is not None for bar in group.bars)
              else "one seed: no error bars")
    detail = textwrap.fill(f"Avg over {pairs}; {spread}",
                           width=int(size[0] * TITLE_CHARACTERS_PER_INCH))
    figure.suptitle(f"{dataset_name(group.dataset)}, {SCENARIO_NAMES[group.scenario]} "
                    f"(protocol {group.protocol})\n{detail}", fontsize=9)
    return save_figure(figure, stem)

