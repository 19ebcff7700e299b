"""The evaluation protocols a grid can select, each recorded in every result it produces.

Published numbers in this field come from incompatible evaluators (``shared/spec``: UCDIR's
P@k, CoDA's mAP@All, UEM's paper protocol); a protocol bundles one evaluator's choices so a
result says exactly how it was scored (``describe()`` goes into the record).

Registered (``u2cdr.registry.PROTOCOLS``):
    * ``'uem'`` (default) — UEM's tables: CoDA mAP@All (VOC AP, macro over classes,
      Euclidean) as ``map_all``, with ``map_all_micro`` (same AP, averaged over queries) and
      ``map_all_noninterp`` (non-interpolated AP, same averaging) beside it, plus UCDIR P@k
      (cosine, ``min(k, n_i)`` denominator) for ks (1, 5, 15) as ``p@1``, ``p@5``, ``p@15``.
    * ``'coda'`` — only CoDA's ``map_all``.
    * ``'ucdir'`` — only UCDIR's ``p@k`` (e.g. ks=(50, 100, 200) for DomainNet).

In scenario ``'open'`` retrieval metrics cover only the queries whose class is in the gallery
(UEM's "shared-set mAP@All"), and ``open_set_acc`` / ``false_reject_rate`` score
``private_pred`` against the truth (a query is private when its label is not among the
gallery labels). The flagged queries are *not* removed from the retrieval metrics: those use
the truth, as UEM's shared-set mAP does.

Keys that may be absent: every retrieval key when no query's class is in the gallery,
``open_set_acc`` when the open scenario has no private query, ``false_reject_rate`` when it has
no shared query. The returned dict holds finite floats only, never NaN.

Large galleries: P@k's top-k search takes an index choice (``index='exact'`` by default,
``'ivf'``, ``'hnsw'``, or ``'auto'`` — exact up to ``approximate_above`` gallery items, IVF past
it — with ``nlist``, ``nprobe``, ``hnsw_m``, ``ef_search`` and ``use_gpu``; see
``retrieval.SearchIndex``). mAP@All is always computed over the full exact ranking, streamed in
blocks (an approximate index only yields top-k lists; an AP over those would be mAP@k, a
different metric). ``describe()`` records both: ``map_all_ranking``, and ``pk_search`` with the
index that actually ran (``used``) once the protocol has evaluated a cell.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Iterable

import numpy as np

from u2cdr.evaluation.checks import (DISTANCES, as_flags, check_choice, check_interpolated,
                                     check_ks, check_positive_int, check_query_gallery)
from u2cdr.evaluation.metrics import (AVERAGES, PK_DENOMINATORS, QueryAveragePrecision,
                                      false_reject_rate, mean_average_precision,
                                      open_set_accuracy, precision_at_k,
                                      query_average_precisions, scorable_queries)
from u2cdr.evaluation.retrieval import MAP_ALL_RANKING, SearchIndex
from u2cdr.registry import PROTOCOLS

SCENARIOS = ("closed", "partial", "open")
TIE_BREAK = "equal scores ranked by ascending gallery index"
# The P@k search settings (``retrieval.SearchIndex``), as protocol config keys.
SEARCH_KNOBS = ("index", "approximate_above", "nlist", "nprobe", "hnsw_m", "ef_search",
                "use_gpu")


def protocol_cell_identity(resolved_cfg: dict[str, Any]) -> dict[str, Any]:
    """A protocol config (defaults filled in) as it should enter a cell key.

    Search settings that cannot change the numbers are dropped: ``use_gpu`` always (like the
    device), and every search knob when ``index`` is ``'exact'`` — so the cells of work dirs
    written before the index choice existed keep their keys. An approximate or ``'auto'``
    index changes P@k, so its settings stay in the key.
    """
    identity = {key: value for key, value in resolved_cfg.items() if key != "use_gpu"}
    if identity.get("index", "exact") == "exact":
        identity = {key: value for key, value in identity.items() if key not in SEARCH_KNOBS}
    return identity


class Protocol:
    """An evaluator: features and labels in, a flat ``{metric: float}`` out.

    Subclasses implement ``retrieval_metrics``; the base class checks the inputs, adds the
    open-set metrics and drops undefined values.
    """

    name: ClassVar[str] = "protocol"

    def __init__(self, *, chunk_size: int = 1024) -> None:
        # chunk_size bounds memory only (results do not depend on it), so describe() omits it.
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")

    def retrieval_metrics(self, query_features: np.ndarray, query_labels: np.ndarray,
                          gallery_features: np.ndarray, gallery_labels: np.ndarray
                          ) -> dict[str, float]:
        """Ranking metrics over the scorable queries (at least one exists when called)."""
        raise NotImplementedError

    def knobs(self) -> dict[str, Any]:
        """The settings that change the numbers, as plain data."""
        return {}

    def describe(self) -> dict:
        """Plain data written into each result record: the name and every knob."""
        return {"name": self.name, **self.knobs(), "tie_break": TIE_BREAK}

    def evaluate(self, query_features: np.ndarray, query_labels: np.ndarray,
                 gallery_features: np.ndarray, gallery_labels: np.ndarray, *, scenario: str,
                 private_pred: np.ndarray | None = None) -> dict[str, float]:
        """Score one cell.

        Args:
            query_features: ``[N_q, D]``. query_labels: ``[N_q]`` global class ids.
            gallery_features: ``[N_g, D]``. gallery_labels: ``[N_g]`` global class ids.
            scenario: ``'closed'``, ``'partial'`` or ``'open'``.
            private_pred: ``[N_q]`` bool, True = flagged private (required in ``'open'``;
                ignored otherwise).

        Returns:
            Finite metrics in percent; see the module docstring for keys that may be absent.
        """
        check_choice(scenario, "scenario", SCENARIOS)
        query_features, query_labels, gallery_features, gallery_labels = check_query_gallery(
            query_features, query_labels, gallery_features, gallery_labels)
        metrics: dict[str, float] = {}
        if scenario == "open":
            if private_pred is None:
                raise ValueError("scenario 'open' needs private_pred (from Method.detect_private "
                                 "or u2cdr.evaluation.detect_private_generic)")
            prediction = as_flags(private_pred, "private_pred")
            if prediction.shape[0] != query_labels.shape[0]:
                raise ValueError(f"private_pred has {prediction.shape[0]} entries but there are "
                                 f"{query_labels.shape[0]} queries")
            private_true = ~scorable_queries(query_labels, gallery_labels)
            metrics["open_set_acc"] = open_set_accuracy(private_true, prediction)
            metrics["false_reject_rate"] = false_reject_rate(private_true, prediction)
        if scorable_queries(query_labels, gallery_labels).any():
            metrics = {**self.retrieval_metrics(query_features, query_labels, gallery_features,
                                                gallery_labels), **metrics}
        return {name: float(value) for name, value in metrics.items() if math.isfinite(value)}


@PROTOCOLS.register_module(name="coda")
class CoDAProtocol(Protocol):
    """CoDA's mAP@All (``wangxu-scu/CoDA:utils/utils.py`` ``cal_map_sda``) as ``map_all``."""

    name = "coda"

    def __init__(self, *, distance: str = "euclidean", interpolated: bool = True,
                 average: str = "class", chunk_size: int = 1024) -> None:
        super().__init__(chunk_size=chunk_size)
        self.distance = check_choice(distance, "distance", DISTANCES)
        self.interpolated = check_interpolated(interpolated)
        self.average = check_choice(average, "average", AVERAGES)

    def knobs(self) -> dict[str, Any]:
        return {"distance": self.distance, "interpolated": self.interpolated,
                "average": self.average, "map_all_ranking": MAP_ALL_RANKING}

    def average_precisions(self, query_features: np.ndarray, query_labels: np.ndarray,
                           gallery_features: np.ndarray, gallery_labels: np.ndarray
                           ) -> QueryAveragePrecision:
        """Both AP variants of every scorable query under this protocol's distance."""
        return query_average_precisions(query_features, query_labels, gallery_features,
                                        gallery_labels, distance=self.distance,
                                        chunk_size=self.chunk_size)

    def retrieval_metrics(self, query_features: np.ndarray, query_labels: np.ndarray,
                          gallery_features: np.ndarray, gallery_labels: np.ndarray
                          ) -> dict[str, float]:
        per_query = self.average_precisions(query_features, query_labels, gallery_features,
                                            gallery_labels)
        values = per_query.interpolated if self.interpolated else per_query.non_interpolated
        return {"map_all": mean_average_precision(values, per_query.labels, self.average)}


@PROTOCOLS.register_module(name="ucdir")
class UCDIRProtocol(Protocol):
    """UCDIR's P@k (``conghui1002/UCDIR:main.py`` ``retrieval_precision_cal``) as ``p@k``.

    ``index`` … ``use_gpu`` choose how each query's top k are found (``retrieval.SearchIndex``:
    exact by default; IVF/HNSW for very large galleries, at the cost of missed neighbours).
    """

    name = "ucdir"

    def __init__(self, *, ks: Iterable[int] = (1, 5, 15), pk_denominator: str = "min_k_relevant",
                 pk_similarity: str = "cosine", index: str = "exact",
                 approximate_above: int = 200_000, nlist: int | None = None, nprobe: int = 32,
                 hnsw_m: int = 32, ef_search: int = 128, use_gpu: bool = False,
                 chunk_size: int = 1024) -> None:
        super().__init__(chunk_size=chunk_size)
        self.ks = check_ks(ks)
        self.pk_denominator = check_choice(pk_denominator, "pk_denominator", PK_DENOMINATORS)
        self.pk_similarity = check_choice(pk_similarity, "pk_similarity", DISTANCES)
        self.search = SearchIndex(kind=index, approximate_above=approximate_above, nlist=nlist,
                                  nprobe=nprobe, hnsw_m=hnsw_m, ef_search=ef_search,
                                  use_gpu=use_gpu)
        self._last_search: tuple[int, int] | None = None  # (N_g, k) of the last evaluation

    def knobs(self) -> dict[str, Any]:
        searched = self._last_search or (None, None)
        return {"ks": list(self.ks), "pk_denominator": self.pk_denominator,
                "pk_similarity": self.pk_similarity,
                "pk_search": self.search.describe(*searched)}

    def retrieval_metrics(self, query_features: np.ndarray, query_labels: np.ndarray,
                          gallery_features: np.ndarray, gallery_labels: np.ndarray
                          ) -> dict[str, float]:
        precisions = precision_at_k(query_features, query_labels, gallery_features,
                                    gallery_labels, ks=self.ks, denominator=self.pk_denominator,
                                    similarity=self.pk_similarity, chunk_size=self.chunk_size,
                                    index=self.search)
        num_gallery = len(gallery_features)
        self._last_search = (num_gallery, min(max(self.ks), num_gallery))
        return {f"p@{k}": value for k, value in precisions.items()}


@PROTOCOLS.register_module(name="uem")
class UEMProtocol(Protocol):
    """UEM's tables (CoDA mAP@All, "Following [17]") plus the variants UEM leaves open.

    ``map_all`` uses the configured ``interpolated`` and ``average``; ``map_all_micro``
    keeps the interpolation and averages over queries; ``map_all_noninterp`` keeps the
    averaging and uses non-interpolated AP. All three come from one ranking. The search
    knobs (``index`` … ``use_gpu``) reach P@k only; mAP@All always ranks the full gallery.
    """

    name = "uem"

    def __init__(self, *, ks: Iterable[int] = (1, 5, 15), distance: str = "euclidean",
                 interpolated: bool = True, average: str = "class",
                 pk_denominator: str = "min_k_relevant", pk_similarity: str = "cosine",
                 index: str = "exact", approximate_above: int = 200_000,
                 nlist: int | None = None, nprobe: int = 32, hnsw_m: int = 32,
                 ef_search: int = 128, use_gpu: bool = False, chunk_size: int = 1024) -> None:
        super().__init__(chunk_size=chunk_size)
        self.map_protocol = CoDAProtocol(distance=distance, interpolated=interpolated,
                                         average=average, chunk_size=chunk_size)
        self.pk_protocol = UCDIRProtocol(ks=ks, pk_denominator=pk_denominator,
                                         pk_similarity=pk_similarity, index=index,
                                         approximate_above=approximate_above, nlist=nlist,
                                         nprobe=nprobe, hnsw_m=hnsw_m, ef_search=ef_search,
                                         use_gpu=use_gpu, chunk_size=chunk_size)

    def knobs(self) -> dict[str, Any]:
        return {**self.map_protocol.knobs(), **self.pk_protocol.knobs()}

    def retrieval_metrics(self, query_features: np.ndarray, query_labels: np.ndarray,
                          gallery_features: np.ndarray, gallery_labels: np.ndarray
                          ) -> dict[str, float]:
        coda = self.map_protocol
        per_query = coda.average_precisions(query_features, query_labels, gallery_features,
                                            gallery_labels)
        chosen = per_query.interpolated if coda.interpolated else per_query.non_interpolated
        return {
            "map_all": mean_average_precision(chosen, per_query.labels, coda.average),
            "map_all_micro": mean_average_precision(chosen, per_query.labels, "query"),
            "map_all_noninterp": mean_average_precision(per_query.non_interpolated,
                                                        per_query.labels, coda.average),
            **self.pk_protocol.retrieval_metrics(query_features, query_labels, gallery_features,
                                                 gallery_labels),
        }
