"""Gallery ranking for the metrics: exact full rankings streamed in blocks, top-k via faiss.

mAP@All ranks the *entire* gallery for every query (CoDA, ``wangxu-scu/CoDA:utils/utils.py``),
so a ranking is an ``[N_q, N_g]`` table. It is never held whole: queries are scored a block at a
time (at most ``chunk_size`` queries, and at most ``BLOCK_ELEMENTS`` query×gallery scores), and
each block's ranking is turned into what the metrics need before the next block is scored, so
peak memory is ``O(BLOCK_ELEMENTS)`` whatever ``N_q`` and ``N_g`` are (one row when a single
query's row is larger).

Scores (float32, one formula whatever the block size):
    * ``'euclidean'`` — squared L2 distance ``‖q‖² + ‖g‖² − 2⟨q, g⟩``, clamped at 0, ascending
      (faiss ``IndexFlatL2``'s BLAS formula; squared and plain L2 rank identically, as CoDA's
      ``-cdist`` score).
    * ``'cosine'`` — features L2-normalised, inner product descending (``IndexFlatIP``, UCDIR's
      ``argsort(-cosine_similarity)``). A zero vector stays zero (similarity 0 to everything).

Tie-break: items with *equal* scores are ordered by ascending gallery index, so a ranking is a
function of the scores alone. Peer code breaks ties with NumPy's unstable quicksort (UCDIR) or
``argsort`` (CoDA), so on tied scores its numbers can differ from ours; on real-valued features
ties come only from duplicate gallery vectors, which are found once and always tie exactly
(BLAS may round the same product differently at different output positions). The exact
ranking sorts one 64-bit key per item: the score's bits mapped to an order-preserving unsigned
integer (high half) and the gallery index (low half), which is the tie rule itself and lets
NumPy's vectorised integer sort do the work.

Float32 caveat: BLAS rounds a product in the last bits depending on the block's shape and the
library, so items whose scores agree to about 1e-7 relative (a few float32 ulps) may swap
places between very different ``chunk_size`` values or against another implementation (against
the faiss ``k = N_g`` search this module used before, 10 of 2950 query APs on 3000-item
galleries differed, mAP@All by < 1e-5 points). Exact ties and everything coarser are unaffected.

Top-k search (P@k) goes through a ``SearchIndex``: ``'exact'`` is the exhaustive search above
(the top ``k`` keys of each row, so P@k and mAP@All rank with the same scores); ``'ivf'``
(``faiss.IndexIVFFlat``) and ``'hnsw'`` (``faiss.IndexHNSWFlat``) are approximate and may miss
true neighbours; ``'auto'`` is exact up to ``approximate_above`` gallery items and IVF past it.
mAP@All never uses an approximate index: an approximate index returns top-k lists, and an AP
over a top-k list is a different metric (mAP@k), so mAP@All is always computed over the full
exact ranking (cost ``O(N_q · N_g)``, memory bounded as above) and records say so.
"""
from __future__ import annotations

import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

import faiss
import numpy as np

from u2cdr.evaluation.checks import (DISTANCES, as_features, check_choice, check_positive_int,
                                     check_query_gallery)

INDEX_KINDS = ("exact", "ivf", "hnsw", "auto")
APPROXIMATE_KINDS = ("ivf", "hnsw")
# Query×gallery scores per block: 8.4M entries. With the sort keys and relevance flags a
# block's working set is about 14 bytes an entry, ~120 MB; larger blocks were not faster.
BLOCK_ELEMENTS = 1 << 23
# faiss GPU indexes return at most this many neighbours per query.
GPU_MAX_K = 2048
# What mAP@All is computed over; written into records (see the module docstring).
MAP_ALL_RANKING = "full exact ranking (streamed blocks), whatever the P@k index"
# Entries below which a block's per-row work is not split over threads.
MIN_PART_ELEMENTS = 1 << 18
# Keys (8 bytes each) encoded, sorted and read in one go, in one reused buffer per thread:
# 2 MB, so they stay in cache.
CACHE_ELEMENTS = 1 << 18
_LOW_HALF = np.uint64(0xFFFFFFFF)
T = TypeVar("T")


def prepare_features(features: np.ndarray, distance: str) -> np.ndarray:
    """float32 ``[N, D]`` ready for scoring: a normalised copy for cosine, as-is otherwise."""
    check_choice(distance, "distance", DISTANCES)
    prepared = np.array(features, dtype=np.float32, order="C", copy=True)
    if distance == "cosine":
        faiss.normalize_L2(prepared)
    return prepared


def _prepared_pair(query: np.ndarray, gallery: np.ndarray, distance: str
                   ) -> tuple[np.ndarray, np.ndarray]:
    check_choice(distance, "distance", DISTANCES)
    query = prepare_features(as_features(query, "query"), distance)
    gallery = prepare_features(as_features(gallery, "gallery"), distance)
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(f"query has {query.shape[1]} feature dimensions but gallery has "
                         f"{gallery.shape[1]}")
    return query, gallery


def query_blocks(num_query: int, num_gallery: int, chunk_size: int) -> Iterator[slice]:
    """Consecutive query slices of at most ``chunk_size`` rows and ``BLOCK_ELEMENTS`` scores."""
    rows = max(1, min(chunk_size, BLOCK_ELEMENTS // max(num_gallery, 1)))
    for start in range(0, num_query, rows):
        yield slice(start, min(start + rows, num_query))


def parallel_workers() -> int:
    """Threads for the per-row work after a block's matrix product: faiss's OpenMP count
    (``OMP_NUM_THREADS`` when set), at most the CPU count."""
    return max(1, min(os.cpu_count() or 1, faiss.omp_get_max_threads()))


def map_row_parts(function: Callable[[slice], T], num_rows: int, row_elements: int) -> list[T]:
    """``function`` over consecutive row slices that cover ``range(num_rows)``, in threads.

    NumPy releases the GIL in its sorts and ufunc loops, so per-row work (keys, sorts, AP)
    spreads over the cores as the BLAS product before it does; without this the product
    would use every core and the rest of a block one. Parts hold at least
    ``MIN_PART_ELEMENTS`` entries (smaller ones cost more in threads than they save); the
    results are per row, so they do not depend on the split.
    """
    parts = min(parallel_workers(), num_rows,
                max(1, num_rows * row_elements // MIN_PART_ELEMENTS))
    bounds = np.linspace(0, num_rows, parts + 1).round().astype(int)
    slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    if parts == 1:
        return [function(slices[0])]
    with ThreadPoolExecutor(parts) as pool:
        return list(pool.map(function, slices))


def duplicate_rows(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(duplicates, originals)``: rows equal to an earlier row, and the first such row.

    Equality is of values (``-0.0`` equals ``0.0``); rows are compared as raw bytes after
    adding ``+0.0``, which turns ``-0.0`` into ``0.0`` and changes nothing else.
    """
    canonical = np.ascontiguousarray(features + np.float32(0.0), dtype=np.float32)
    as_bytes = canonical.view(np.dtype((np.void, canonical.itemsize * canonical.shape[1])))
    _, first, inverse = np.unique(as_bytes.ravel(), return_index=True, return_inverse=True)
    first_copy = first[inverse.reshape(-1)]
    duplicates = np.flatnonzero(first_copy != np.arange(len(first_copy)))
    return duplicates, first_copy[duplicates]


class ExactScorer:
    """Exhaustive scores of query blocks against one gallery, ranked through 64-bit keys.

    The score buffer of a block is allocated once and reused: fresh multi-megabyte arrays per
    block cost page faults comparable to the arithmetic.

    Args:
        query, gallery: features already prepared for ``distance`` (``prepare_features``).
        distance: ``'euclidean'`` or ``'cosine'``.
    """

    def __init__(self, query: np.ndarray, gallery: np.ndarray, distance: str) -> None:
        if gallery.shape[0] >= 1 << 31:
            raise ValueError(f"the gallery has {gallery.shape[0]} items; exact ranking keys hold "
                             f"gallery indices below 2**31")
        self.gallery, self.distance = gallery, distance
        self.duplicates, self.originals = duplicate_rows(gallery)
        # Scaling by -2 or -1 is exact in floating point, so (-2q)·g is bit-identical to -2(q·g)
        # and saves a pass over every block.
        self.scaled_query = query * np.float32(-2.0 if distance == "euclidean" else -1.0)
        self.shifted_ids32 = np.arange(gallery.shape[0], dtype=np.uint32) << np.uint32(1)
        if distance == "euclidean":
            self.query_sq_norms = np.einsum("nd,nd->n", query, query)
            self.gallery_sq_norms = np.einsum("nd,nd->n", gallery, gallery)
        self._scores = np.empty((0, gallery.shape[0]), dtype=np.float32)

    def ascending_scores(self, rows: slice) -> np.ndarray:
        """``[len(rows), N_g]`` float32, smaller = better: squared L2, or minus the cosine.

        The array is the reused block buffer, valid until the next call.
        """
        scores = self._products(rows)
        self._finish_scores(scores, rows)
        return scores

    def _products(self, rows: slice) -> np.ndarray:
        """The block's BLAS product ``(-2q or -q)·gᵀ``, in the reused score buffer."""
        count = rows.stop - rows.start
        if self._scores.shape[0] < count:
            self._scores = np.empty((count, self.gallery.shape[0]), dtype=np.float32)
        scores = self._scores[:count]
        np.matmul(self.scaled_query[rows], self.gallery.T, out=scores)
        return scores

    def _finish_scores(self, scores: np.ndarray, rows: slice) -> None:
        """Products of queries ``rows`` → ascending scores, in place."""
        if self.duplicates.size:
            # BLAS may round a product differently at different output columns; copying the
            # first copy's score keeps identical gallery vectors exactly tied.
            scores[:, self.duplicates] = scores[:, self.originals]
        if self.distance == "euclidean":
            scores += self.gallery_sq_norms
            scores += self.query_sq_norms[rows, None]
            # Clamped as faiss does; after it every score is +0.0 or positive.
            np.maximum(scores, np.float32(0.0), out=scores)
        else:
            scores += np.float32(0.0)  # -0.0 → +0.0, so equal scores get equal keys

    def ranked(self, rows: slice, read: Callable[[np.ndarray], np.ndarray],
               flags: np.ndarray | None = None, depth: int | None = None) -> np.ndarray:
        """``read`` of each row's sorted ranking keys (best first), all or the top ``depth``.

        Args:
            rows: the queries of this block.
            read: turns ``[r, N_g or depth]`` sorted keys into what the caller keeps, row by
                row (e.g. ``flag_of``); the keys it sees are overwritten afterwards.
            flags: ``[len(rows), N_g]`` bool stored in each key's bit 0 (e.g. "relevant").
            depth: keep only each row's ``depth`` smallest keys (``np.partition``).

        Returns:
            ``read``'s results for all rows, concatenated along the first axis.

        Scores are finished, turned into keys, sorted and read a few rows at a time
        (``CACHE_ELEMENTS``) in one small key buffer per thread, so after the BLAS product
        each score travels from memory once and the keys never do.
        """
        products = self._products(rows)
        count, num_gallery = products.shape
        rows_in_cache = max(1, CACHE_ELEMENTS // num_gallery)

        def rank_part(part: slice) -> np.ndarray:
            buffer = np.empty((min(rows_in_cache, part.stop - part.start), num_gallery),
                              dtype=np.uint64)
            pieces = []
            for start in range(part.start, part.stop, rows_in_cache):
                piece = slice(start, min(start + rows_in_cache, part.stop))
                scores = products[piece]
                self._finish_scores(scores, slice(rows.start + start, rows.start + piece.stop))
                keys = self._encode(scores, None if flags is None else flags[piece],
                                    buffer[:piece.stop - piece.start])
                if depth is not None and depth < num_gallery:
                    keys = np.partition(keys, depth - 1, axis=1)[:, :depth]
                keys.sort(axis=1)
                pieces.append(read(keys))
            return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

        parts = map_row_parts(rank_part, count, num_gallery)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _encode(self, scores: np.ndarray, flags: np.ndarray | None, keys: np.ndarray
                ) -> np.ndarray:
        """Write ``scores``'s ranking keys into ``keys`` (a thread's piece buffer).

        Bits 63–32: the float32 score's bits, which order non-negative floats as unsigned
        integers do (clamped Euclidean scores); cosine scores can be negative, so there every
        bit of a negative number and the sign bit of a non-negative one are flipped first.
        Bits 31–1: the gallery index, the tie-break. Bit 0: ``flags`` (e.g. "relevant"),
        carried through the sort for free.
        """
        bits = scores.view(np.int32)
        if self.distance == "cosine":  # clamped Euclidean scores are >= +0.0: already ordered
            flip = bits >> 31  # -1 where negative, 0 elsewhere
            flip |= np.int32(-(1 << 31))
            bits ^= flip
        if _native_layout(keys):  # write both 32-bit halves in place: two passes, no casts
            halves = keys.view(np.uint32)
            np.copyto(halves[:, 1::2], bits.view(np.uint32))
            if flags is None:
                np.copyto(halves[:, 0::2], self.shifted_ids32)
            else:
                np.bitwise_or(self.shifted_ids32, flags.view(np.uint8), out=halves[:, 0::2])
            return keys
        np.left_shift(bits.view(np.uint32), np.uint64(32), out=keys)
        keys |= self.shifted_ids32
        if flags is not None:
            keys |= flags
        return keys


def gallery_index_of(keys: np.ndarray) -> np.ndarray:
    """``[..]`` uint32 gallery indices held in bits 31–1 of ``keys``."""
    low_half = keys.view(np.uint32)[..., 0::2] if _native_layout(keys) \
        else (keys & _LOW_HALF).astype(np.uint32)
    return low_half >> np.uint32(1)


def flag_of(keys: np.ndarray) -> np.ndarray:
    """``[..]`` bool: bit 0 of ``keys`` (the ``flags`` given to ``ExactScorer.ranked``)."""
    if _native_layout(keys):
        return (keys.view(np.uint8)[..., 0::8] & np.uint8(1)).view(bool)
    return (keys & np.uint64(1)).astype(bool)


def _native_layout(keys: np.ndarray) -> bool:
    """Whether ``keys``'s 32- and 8-bit halves can be read through a view (little-endian)."""
    return sys.byteorder == "little" and keys.flags.c_contiguous


def ranked_gallery(query: np.ndarray, gallery: np.ndarray, *, distance: str = "euclidean",
                   chunk_size: int = 1024) -> Iterator[tuple[slice, np.ndarray]]:
    """Rank the whole gallery for each query, one block of queries at a time.

    Args:
        query: ``[N_q, D]`` query features.
        gallery: ``[N_g, D]`` gallery features.
        distance: ``'euclidean'`` or ``'cosine'`` (see the module docstring).
        chunk_size: at most this many queries per block (memory only; see ``query_blocks``).

    Yields:
        ``(rows, order)``: ``rows`` the slice of query indices in this block, ``order``
        ``[len(rows), N_g]`` int64 gallery indices, best first, ties by ascending index.
    """
    check_choice(distance, "distance", DISTANCES)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    query, gallery = _prepared_pair(query, gallery, distance)
    scorer = ExactScorer(query, gallery, distance)
    for rows in query_blocks(query.shape[0], gallery.shape[0], chunk_size):
        yield rows, scorer.ranked(rows, read=gallery_index_of).astype(np.int64)


def _class_codes(query_labels: np.ndarray, gallery_labels: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Labels as compact codes (int32 ``0..C-1`` over the gallery's classes; -1 = absent)."""
    classes, gallery_codes = np.unique(gallery_labels, return_inverse=True)
    position = np.searchsorted(classes, query_labels).clip(max=len(classes) - 1)
    query_codes = np.where(classes[position] == query_labels, position, -1)
    return query_codes.astype(np.int32), gallery_codes.astype(np.int32).reshape(-1)


def ranked_relevance(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                     gallery_labels: np.ndarray, *, distance: str = "euclidean",
                     chunk_size: int = 1024) -> Iterator[tuple[slice, np.ndarray]]:
    """Per block of queries, which ranked gallery items share the query's class.

    This is all a ranking metric needs: ``relevance[i, r]`` is True when the gallery item at
    rank ``r`` (0-based) for query ``rows.start + i`` has the query's label.

    Yields:
        ``(rows, relevance)`` with ``relevance`` ``[len(rows), N_g]`` bool.
    """
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    query, query_labels, gallery, gallery_labels = check_query_gallery(
        query, query_labels, gallery, gallery_labels)
    query_codes, gallery_codes = _class_codes(query_labels, gallery_labels)
    query, gallery = _prepared_pair(query, gallery, distance)
    scorer = ExactScorer(query, gallery, distance)
    for rows in query_blocks(query.shape[0], gallery.shape[0], chunk_size):
        yield rows, scorer.ranked(rows, flags=gallery_codes == query_codes[rows, None],
                                  read=flag_of)


def gpu_available() -> bool:
    """True when this faiss build has GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _positive_int_or_none(value: Any, name: str) -> int | None:
    return None if value is None else check_positive_int(value, name)


@dataclass(frozen=True)
class SearchIndex:
    """Which index finds each query's top-k gallery items (P@k), and with what settings.

    Attributes:
        kind: ``'exact'`` (exhaustive, the default), ``'ivf'`` (``faiss.IndexIVFFlat``),
            ``'hnsw'`` (``faiss.IndexHNSWFlat``) or ``'auto'`` (exact up to
            ``approximate_above`` gallery items, IVF past it: IVF trains in seconds and has a
            faiss GPU version, HNSW has neither).
        approximate_above: the gallery size past which ``'auto'`` goes approximate.
        nlist: IVF lists; None = ``round(4·sqrt(N_g))``, the usual rule of thumb.
        nprobe: IVF lists visited per query (more = closer to exact, slower).
        hnsw_m: HNSW graph degree M.
        ef_search: HNSW search beam; raised to k when k is larger.
        use_gpu: put the faiss index on GPU 0 when faiss has GPU support and sees a GPU
            (``gpu_available``); otherwise, or when k exceeds faiss's GPU limit of 2048, the
            search stays on the CPU. Records say which was used.
    """

    kind: str = "exact"
    approximate_above: int = 200_000
    nlist: int | None = None
    nprobe: int = 32
    hnsw_m: int = 32
    ef_search: int = 128
    use_gpu: bool = False

    def __post_init__(self) -> None:
        check_choice(self.kind, "index", INDEX_KINDS)
        check_positive_int(self.approximate_above, "approximate_above")
        _positive_int_or_none(self.nlist, "nlist")
        for name in ("nprobe", "hnsw_m", "ef_search"):
            check_positive_int(getattr(self, name), name)
        if not isinstance(self.use_gpu, (bool, np.bool_)):
            raise ValueError(f"use_gpu must be True or False, got {self.use_gpu!r}")
        if self.use_gpu and self.kind == "hnsw":
            raise ValueError("use_gpu=True with index='hnsw': faiss has no GPU HNSW index; "
                             "use index='ivf' or 'exact' on the GPU")

    def resolved_kind(self, num_gallery: int) -> str:
        """``'exact'``, ``'ivf'`` or ``'hnsw'``: what searches a gallery of this size."""
        if self.kind == "auto":
            return "ivf" if num_gallery > self.approximate_above else "exact"
        return self.kind

    def lists(self, num_gallery: int) -> int:
        """IVF lists for this gallery size (never more than its items)."""
        wanted = self.nlist if self.nlist is not None else round(4 * math.sqrt(num_gallery))
        return max(1, min(wanted, num_gallery))

    def on_gpu(self, num_gallery: int, k: int) -> bool:
        """Whether a search of ``k`` neighbours in this gallery runs on the GPU."""
        return (self.use_gpu and self.resolved_kind(num_gallery) != "hnsw" and k <= GPU_MAX_K
                and gpu_available())

    def describe(self, num_gallery: int | None = None, k: int | None = None) -> dict:
        """Plain data for records: the configured settings, and with the gallery size and k
        of a search, ``used`` — the index that ran, whether it is approximate, on what."""
        settings: dict[str, Any] = {"index": self.kind}
        if self.kind == "auto":
            settings["approximate_above"] = self.approximate_above
        if self.kind in ("auto", "ivf"):
            settings.update(nlist=self.nlist if self.nlist is not None else "4*sqrt(N_g)",
                            nprobe=self.nprobe)
        if self.kind == "hnsw":
            settings.update(hnsw_m=self.hnsw_m, ef_search=self.ef_search)
        settings["use_gpu"] = bool(self.use_gpu)
        if num_gallery is not None and k is not None:
            kind = self.resolved_kind(num_gallery)
            used: dict[str, Any] = {"index": kind, "approximate": kind in APPROXIMATE_KINDS}
            if kind == "ivf":
                nlist = self.lists(num_gallery)
                used.update(nlist=nlist, nprobe=min(self.nprobe, nlist))
            elif kind == "hnsw":
                used.update(hnsw_m=self.hnsw_m, ef_search=max(self.ef_search, k))
            used["gpu"] = self.on_gpu(num_gallery, k)
            settings["used"] = used
        return settings

    def faiss_index(self, gallery: np.ndarray, distance: str, k: int) -> faiss.Index:
        """A faiss index over ``gallery`` (prepared for ``distance``), ready to search ``k``.

        ``'exact'`` gets a flat index here only for the GPU; on the CPU exact search does not
        go through faiss (see ``top_k_relevance``).
        """
        num_gallery, dim = gallery.shape
        kind = self.resolved_kind(num_gallery)
        metric = faiss.METRIC_L2 if distance == "euclidean" else faiss.METRIC_INNER_PRODUCT
        if kind == "ivf":
            nlist = self.lists(num_gallery)
            quantizer = faiss.IndexFlat(dim, metric)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, metric)
            index.train(gallery)
            index.nprobe = min(self.nprobe, nlist)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, metric)
            index.hnsw.efSearch = max(self.ef_search, k)
        else:
            index = faiss.IndexFlat(dim, metric)
        index.add(gallery)
        if self.on_gpu(num_gallery, k):
            resources = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(resources, 0, index)
            index.resources_keepalive = resources
        return index


def as_search_index(index: SearchIndex | str) -> SearchIndex:
    """A ``SearchIndex`` from itself or from a kind name (``'exact'``, ``'ivf'``, ...)."""
    if isinstance(index, SearchIndex):
        return index
    check_choice(index, "index", INDEX_KINDS)
    return SearchIndex(kind=index)


def _stable_order(scores: np.ndarray, ids: np.ndarray, distance: str) -> np.ndarray:
    """faiss's ``ids`` re-sorted so that equal scores are in ascending gallery index.

    faiss already returns each row sorted by score; only rows holding a tie are re-sorted.
    """
    tied_rows = np.flatnonzero((scores[:, 1:] == scores[:, :-1]).any(axis=1))
    for row in tied_rows:
        primary = scores[row] if distance == "euclidean" else -scores[row]
        ids[row] = ids[row][np.lexsort((ids[row], primary))]
    return ids


def top_k_relevance(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                    gallery_labels: np.ndarray, *, k: int, distance: str = "cosine",
                    chunk_size: int = 1024, index: SearchIndex | str = "exact"
                    ) -> Iterator[tuple[slice, np.ndarray]]:
    """Per block of queries, the relevance of each query's top ``k`` gallery items.

    Exact search keeps the ``k`` smallest ranking keys of each row (``np.partition``), so its
    lists are the first ``k`` of ``ranked_relevance``'s. An approximate index may return
    fewer than ``k`` items (IVF when the probed lists are short); a missing item counts as
    not relevant.

    Yields:
        ``(rows, relevance)`` with ``relevance`` ``[len(rows), min(k, N_g)]`` bool, best first.
    """
    k = check_positive_int(k, "k")
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    search = as_search_index(index)
    query, query_labels, gallery, gallery_labels = check_query_gallery(
        query, query_labels, gallery, gallery_labels)
    query_codes, gallery_codes = _class_codes(query_labels, gallery_labels)
    query, gallery = _prepared_pair(query, gallery, distance)
    num_gallery = gallery.shape[0]
    depth = min(k, num_gallery)
    if search.resolved_kind(num_gallery) == "exact" and not search.on_gpu(num_gallery, depth):
        scorer = ExactScorer(query, gallery, distance)
        for rows in query_blocks(query.shape[0], num_gallery, chunk_size):
            yield rows, scorer.ranked(rows, flags=gallery_codes == query_codes[rows, None],
                                      depth=depth, read=flag_of)
        return
    faiss_index = search.faiss_index(gallery, distance, depth)
    for start in range(0, query.shape[0], chunk_size):
        rows = slice(start, min(start + chunk_size, query.shape[0]))
        scores, ids = faiss_index.search(query[rows], depth)
        ids = _stable_order(scores, ids, distance)
        found = ids >= 0
        codes = np.where(found, gallery_codes[np.where(found, ids, 0)], -1)
        yield rows, found & (codes == query_codes[rows, None])


def nearest_gallery_distance(query: np.ndarray, gallery: np.ndarray, *,
                             distance: str = "euclidean", chunk_size: int = 1024) -> np.ndarray:
    """Distance from each query to its nearest gallery item, ``[N_q]`` float64.

    The neighbour is found with faiss; its distance is then recomputed in float64 so it is
    comparable with distances computed elsewhere in float64 (e.g. cluster diameters).
    ``'euclidean'`` gives the L2 distance, ``'cosine'`` gives ``1 - cos``.
    """
    check_choice(distance, "distance", DISTANCES)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    query, gallery = _prepared_pair(query, gallery, distance)
    index = faiss.IndexFlatL2(gallery.shape[1]) if distance == "euclidean" \
        else faiss.IndexFlatIP(gallery.shape[1])
    index.add(gallery)
    nearest = np.empty(query.shape[0], dtype=np.float64)
    for start in range(0, query.shape[0], chunk_size):
        rows = slice(start, min(start + chunk_size, query.shape[0]))
        _, ids = index.search(query[rows], 1)
        chunk = query[rows].astype(np.float64)
        neighbours = gallery[ids[:, 0]].astype(np.float64)
        if distance == "euclidean":
            nearest[rows] = np.linalg.norm(chunk - neighbours, axis=1)
        else:
            nearest[rows] = 1.0 - np.einsum("nd,nd->n", chunk, neighbours)
    return nearest
