"""mAP@All on N queries × N gallery items: wall time, peak memory, cost over bare similarity.

Not a test. Features are clustered random vectors (``--classes`` Gaussian class means in
``--dim`` dimensions, unit noise), float32, as an embedding would give. For every N the script
times, in one process and in this order:

* ``sim_s`` — the bare similarity: ``query @ gallery.T`` in chunks of 1024 queries into one
  reused buffer, nothing else (the float32 product every exact ranking starts from);
* ``faiss_kN_s`` — a faiss ``IndexFlatL2`` search with ``k = N`` (a full ranking straight from
  faiss, what ``u2cdr.evaluation`` did before), timed on ``--faiss-queries`` queries and scaled
  to N queries (its cost is linear in the number of queries);
* ``map_all_s`` — ``u2cdr.evaluation.map_at_all`` (CoDA's VOC macro mAP, Euclidean), with its
  peak NumPy memory from ``tracemalloc`` (NumPy reports its buffers to it) and the process's
  peak resident set afterwards (``resource.getrusage(...).ru_maxrss``, a high-water mark of the
  whole process, features included; psutil is not installed here).

Target: at N = 50,000, ``map_all_s`` within 3× ``sim_s`` and peak memory under 4 GB.

    python benchmarks/perf/map_all_scaling.py [--sizes 5000 20000 50000] [--dim 128]
        [--classes 50] [--threads T] [--faiss-queries 256]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc

import faiss
import numpy as np
from tabulate import tabulate
from threadpoolctl import threadpool_info, threadpool_limits

from u2cdr.evaluation import map_at_all
from u2cdr.evaluation.retrieval import BLOCK_ELEMENTS, parallel_workers

MiB = 1024 * 1024


def clustered_features(num_items: int, dim: int, means: np.ndarray, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``[num_items, dim]`` float32 features around the class means, and their labels."""
    labels = rng.integers(0, len(means), num_items)
    features = means[labels] + rng.standard_normal((num_items, dim), dtype=np.float32)
    return features.astype(np.float32), labels


def similarity_seconds(query: np.ndarray, gallery: np.ndarray, chunk: int = 1024) -> float:
    """Wall seconds of the chunked float32 product alone."""
    block = np.empty((min(chunk, len(query)), len(gallery)), dtype=np.float32)
    started = time.perf_counter()
    for start in range(0, len(query), chunk):
        rows = query[start:start + chunk]
        np.matmul(rows, gallery.T, out=block[:len(rows)])
    return time.perf_counter() - started


def faiss_full_search_seconds(query: np.ndarray, gallery: np.ndarray, num_timed: int) -> float:
    """Wall seconds of ``IndexFlatL2.search(k=N)`` for all queries, from ``num_timed`` of them."""
    index = faiss.IndexFlatL2(gallery.shape[1])
    index.add(gallery)
    timed = query[:num_timed]
    started = time.perf_counter()
    for start in range(0, len(timed), 64):
        index.search(timed[start:start + 64], len(gallery))
    return (time.perf_counter() - started) * len(query) / len(timed)


def peak_rss_mib() -> float:
    """The process's peak resident set so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(num_items: int, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed)
    means = 0.5 * rng.standard_normal((args.classes, args.dim), dtype=np.float32)
    query, query_labels = clustered_features(num_items, args.dim, means, rng)
    gallery, gallery_labels = clustered_features(num_items, args.dim, means, rng)
    sim_s = similarity_seconds(query, gallery)
    faiss_s = faiss_full_search_seconds(query, gallery, min(args.faiss_queries, num_items))
    tracemalloc.start()
    started = time.perf_counter()
    value = map_at_all(query, query_labels, gallery, gallery_labels)
    map_s = time.perf_counter() - started
    _, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"N": num_items, "sim_s": sim_s, "faiss_kN_s": faiss_s, "map_all_s": map_s,
            "map/sim": map_s / sim_s, "map/faiss_kN": map_s / faiss_s,
            "numpy_peak_MiB": peak_bytes / MiB, "process_peak_rss_MiB": peak_rss_mib(),
            "map_all": value}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS and faiss threads (default: the libraries' own)")
    parser.add_argument("--faiss-queries", type=int, default=256,
                        help="queries the k=N faiss search is timed on (then scaled)")
    args = parser.parse_args(argv)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        rows = [measure(size, args) for size in args.sizes]
        blas_threads = sorted({pool["num_threads"] for pool in threadpool_info()
                               if pool["user_api"] == "blas"})
        workers = parallel_workers()
    print(f"{args.dim}-d features, {args.classes} classes, seed {args.seed}; BLAS threads "
          f"{blas_threads}, evaluation worker threads {workers}, block {BLOCK_ELEMENTS} scores.")
    print("sim_s: chunked query @ gallery.T only; faiss_kN_s: IndexFlatL2.search(k=N), timed "
          f"on {args.faiss_queries} queries and scaled; numpy_peak: tracemalloc peak inside "
          "map_at_all; process_peak_rss: ru_maxrss after it (whole process).")
    print(tabulate(rows, headers="keys", floatfmt=".2f", tablefmt="github"))
    largest = rows[-1]
    print(f"target at N={largest['N']}: map/sim {largest['map/sim']:.2f} (≤ 3), peak "
          f"{largest['process_peak_rss_MiB'] / 1024:.2f} GiB (< 4)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
