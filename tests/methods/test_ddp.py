"""One cell trained by 2 Gloo processes on the CPU equals the same cell trained by one process.

instdisc runs for 2 epochs on the tiny digits pair (40 + 40 images, global batch 16 per domain,
so 8 per rank, 3 steps per epoch; the last step redraws indices, exercising duplicate bank
updates) with the same seed in 2 processes (``torch.multiprocessing.spawn``, Gloo on
127.0.0.1) and in this process. Augmentation is switched off in both (the train transform is the
eval transform): torchvision's random transforms draw from the global generator, which each
rank reseeds per (epoch, rank) (``instdisc.augmentation_seed``), so the 2-rank run would see
other views than the 1-rank run; the sampler order (rank 0's seed) is the same everywhere.
The resume test keeps augmentation on.

Tolerance: what remains is float32 summation order (BatchNorm statistics summed over ranks,
gradients averaged by DDP's all-reduce instead of one batch mean), amplified by 6 SGD steps:
max abs difference < 1e-5 on encoder parameters, banks and embedded features and on the logged
losses (measured: about 1e-7). Training moves the weights by more than 1e-3 (measured 0.68),
and per-rank BatchNorm (MoCo's DDP practice) misses by 4.6e-3 on weights and 4.5e-4 on
features, so a wrong shard, unsynchronised BatchNorm or an unsynced bank does not pass. The
replicas must be bitwise identical to each other (one all-reduce result, one gathered batch).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from u2cdr.data.pair import DomainPair
from u2cdr.engine import distributed
from u2cdr.engine.cell import CELL_SPEC_FILE, execute
from u2cdr.engine.store import RESULT_FILE, STATUS_FILE, read_json
from u2cdr.methods._trainer import TrainingInterrupted
from u2cdr.methods.instdisc import augmentation_seed
from u2cdr.registry import METHODS, build, import_all_components

WORLD = 2
SEED = 2024
TOLERANCE = 1e-5
TINY = dict(type="instdisc", backbone=dict(type="small_cnn", width=8), epochs=2, batch_size=16,
            lr=0.05)
NEGATIVES = ("bank", "batch")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _without_augmentation(pair: DomainPair) -> DomainPair:
    return replace(pair, query=replace(pair.query, train_transform=pair.query.eval_transform),
                   gallery=replace(pair.gallery, train_transform=pair.gallery.eval_transform))


def _train(pair: DomainPair, work_dir: Path, negatives: str) -> dict:
    """Train instdisc with the test seed; what the comparison needs, as CPU tensors."""
    torch.manual_seed(SEED)
    method = build(METHODS, {**TINY, "negatives": negatives}, "method", device="cpu")
    initial = {name: value.clone() for name, value in method.encoder.state_dict().items()}
    method.fit(pair, work_dir)
    return {"initial": initial,
            "state": {name: value.clone() for name, value in method.encoder.state_dict().items()},
            "banks": {domain: bank.entries.clone() for domain, bank in method.banks.items()},
            "query": torch.from_numpy(method.embed(pair.query)),
            "gallery": torch.from_numpy(method.embed(pair.gallery)),
            "losses": [row["loss"] for row in method.history],
            "distributed": method.describe().get("distributed")}


def _resumed_and_straight(pair: DomainPair, root: Path) -> dict:
    """With augmentation: a 2-rank fit stopped after epoch 1 and resumed, and one straight fit.

    The ranks share each work dir, as torchrun's processes share a cell folder, so rank 1
    resumes from the checkpoint rank 0 wrote.
    """
    straight = _train(pair, root / "straight", "bank")
    torch.manual_seed(SEED)
    interrupted = build(METHODS, {**TINY, "negatives": "bank"}, "method", device="cpu")
    interrupted.stop_after_epoch = 1
    try:
        interrupted.fit(pair, root / "resumed")
        raise AssertionError("stop_after_epoch=1 did not stop the fit")
    except TrainingInterrupted:
        pass
    return {"straight": straight, "resumed": _train(pair, root / "resumed", "bank")}


def _helper_checks(rank: int) -> dict:
    """The collective helpers on known inputs, and GlobalBatchNorm against a full-batch BatchNorm."""
    gathered = distributed.all_gather_cat(torch.full((2, 3), float(rank)))
    clustered = distributed.clustered_on_main(
        lambda rows: (distributed.rank(), rows[:, 0].tolist()), torch.tensor([[10.0 + rank]]))
    averaged = distributed.average_over_ranks({"loss": torch.tensor(float(rank + 1))})
    try:
        distributed.all_gather_cat(torch.zeros(rank + 1))
        mismatch = ""
    except ValueError as error:
        mismatch = str(error)

    full = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 3 + 1
    local = full[rank * 4:(rank + 1) * 4].clone().requires_grad_(True)
    norm = distributed.synchronize_batchnorm(nn.Sequential(nn.BatchNorm2d(3)))
    (norm(local) * torch.arange(1.0, 4.0).reshape(1, 3, 1, 1)).square().sum().backward()
    return {"gathered": gathered, "clustered": clustered, "averaged": float(averaged["loss"]),
            "mismatch": mismatch, "bn_type": type(norm[0]).__name__,
            "bn_output": norm(local).detach(), "bn_input_grad": local.grad,
            "bn_weight_grad": norm[0].weight.grad, "bn_running": (norm[0].running_mean.clone(),
                                                                   norm[0].running_var.clone())}


def _worker(rank: int, port: int, pair: DomainPair, augmented_pair: DomainPair, out_dir: Path,
            refused_cell: Path) -> None:
    """One of 2 ranks, as torchrun would start it (the environment is torchrun's)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), U2CDR_NO_PROGRESS="1")
    torch.set_num_threads(1)
    assert distributed.init_from_env("cpu")
    try:
        results = {"helpers": _helper_checks(rank),
                   "runs": {negatives: _train(pair, out_dir / f"rank{rank}" / negatives, negatives)
                            for negatives in NEGATIVES},
                   "resume": _resumed_and_straight(augmented_pair, out_dir / "resume"),
                   "refused_exit_code": execute(refused_cell)}
        torch.save(results, out_dir / f"rank{rank}.pt")
    finally:
        distributed.shutdown()


@pytest.fixture(scope="module")
def two_rank_results(tiny_pair, tmp_path_factory) -> tuple[list[dict], Path]:
    """Both ranks' results; one spawn serves every test of this file that needs 2 ranks."""
    out_dir = tmp_path_factory.mktemp("ddp")
    refused_cell = _write_cell(out_dir / "refused", dict(type="pretrained",
                                                         backbone=dict(type="small_cnn")))
    pair = _without_augmentation(tiny_pair)
    mp.spawn(_worker, args=(_free_port(), pair, tiny_pair, out_dir, refused_cell), nprocs=WORLD,
             join=True)
    return [torch.load(out_dir / f"rank{rank}.pt", weights_only=False) for rank in range(WORLD)], out_dir


def _max_abs_diff(left: torch.Tensor, right: torch.Tensor) -> float:
    return float((left.double() - right.double()).abs().max())


@pytest.mark.slow
@pytest.mark.parametrize("negatives", NEGATIVES)
def test_two_ranks_train_instdisc_like_one_process(negatives, two_rank_results, tiny_pair,
                                                    tmp_path) -> None:
    results, out_dir = two_rank_results
    one = _train(_without_augmentation(tiny_pair), tmp_path, negatives)
    ranks = [result["runs"][negatives] for result in results]

    moved = max(_max_abs_diff(value, one["initial"][name]) for name, value in one["state"].items()
                if value.is_floating_point())  # weights and BatchNorm statistics, not counters
    assert moved > 100 * TOLERANCE  # the comparison below is not satisfied by doing nothing
    for name, value in one["state"].items():
        assert _max_abs_diff(ranks[0]["state"][name], value) < TOLERANCE, name
    for domain in ("A", "B"):
        assert _max_abs_diff(ranks[0]["banks"][domain], one["banks"][domain]) < TOLERANCE, domain
    for role in ("query", "gallery"):
        assert _max_abs_diff(ranks[0][role], one[role]) < TOLERANCE, role
    assert np.allclose(ranks[0]["losses"], one["losses"], rtol=0, atol=TOLERANCE)

    for name, value in ranks[0]["state"].items():  # replicas: bitwise equal
        assert torch.equal(ranks[1]["state"][name], value), name
    for domain in ("A", "B"):
        assert torch.equal(ranks[1]["banks"][domain], ranks[0]["banks"][domain]), domain
    assert torch.equal(ranks[1]["query"], ranks[0]["query"])

    assert ranks[0]["distributed"]["world_size"] == WORLD and ranks[0]["distributed"]["rank_batch"] == 8
    assert one["distributed"] is None  # the one-process record is unchanged
    assert (out_dir / "rank0" / negatives / "ckpt" / "instdisc.pth").is_file()
    assert not (out_dir / "rank1" / negatives / "ckpt").exists()  # only rank 0 writes checkpoints


@pytest.mark.slow
def test_a_resumed_two_rank_fit_equals_a_straight_one(two_rank_results) -> None:
    """Random augmentation on; the ranks share the work dir, so rank 1 resumes from rank 0's file."""
    results, out_dir = two_rank_results
    assert (out_dir / "resume" / "resumed" / "ckpt" / "instdisc.pth").is_file()
    for result in results:
        straight, resumed = result["resume"]["straight"], result["resume"]["resumed"]
        assert resumed["losses"] == straight["losses"]
        for name, value in straight["state"].items():
            assert torch.equal(resumed["state"][name], value), name
        for domain in ("A", "B"):
            assert torch.equal(resumed["banks"][domain], straight["banks"][domain]), domain
    assert torch.equal(results[1]["resume"]["resumed"]["banks"]["A"],
                       results[0]["resume"]["resumed"]["banks"]["A"])


def test_every_rank_and_epoch_gets_its_own_augmentation_seed() -> None:
    seeds = [augmentation_seed(SEED, epoch, rank, 4) for epoch in range(10) for rank in range(4)]
    assert len(set(seeds)) == 40 and SEED not in seeds
    assert augmentation_seed(2**63 - 1, 3, 1, 2) < 2**63  # stays a valid torch seed


@pytest.mark.slow
def test_collective_helpers_and_global_batchnorm(two_rank_results) -> None:
    results, _ = two_rank_results
    full = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 3 + 1
    reference = nn.BatchNorm2d(3)
    full_input = full.clone().requires_grad_(True)
    # Summed over ranks, the per-rank objectives are this one objective on the full batch.
    (reference(full_input) * torch.arange(1.0, 4.0).reshape(1, 3, 1, 1)).square().sum().backward()
    second_output = reference(full).detach()  # the workers' second forward (2 running-stat updates)
    for rank, result in enumerate(results):
        helpers = result["helpers"]
        assert helpers["gathered"].tolist() == [[0.0] * 3, [0.0] * 3, [1.0] * 3, [1.0] * 3]
        assert helpers["clustered"] == (0, [10.0, 11.0])  # computed on rank 0, rows of both ranks
        assert helpers["averaged"] == pytest.approx(1.5)
        assert "same shape on every rank" in helpers["mismatch"] and "(1,)" in helpers["mismatch"]
        assert helpers["bn_type"] == "GlobalBatchNorm"
        rows = slice(rank * 4, (rank + 1) * 4)
        assert _max_abs_diff(helpers["bn_output"], second_output[rows]) < 1e-5
        assert _max_abs_diff(helpers["bn_input_grad"], full_input.grad[rows]) < 1e-4
        assert _max_abs_diff(helpers["bn_running"][0], reference.running_mean) < 1e-6
        assert _max_abs_diff(helpers["bn_running"][1], reference.running_var) < 1e-5
    # DDP would average the ranks' weight gradients; their sum is the full-batch gradient.
    summed = results[0]["helpers"]["bn_weight_grad"] + results[1]["helpers"]["bn_weight_grad"]
    assert _max_abs_diff(summed, reference.weight.grad) < 1e-3


def test_shards_of_a_global_batch_are_its_contiguous_slices(tiny_pair) -> None:
    one = list(tiny_pair.paired_batches(16, torch.Generator().manual_seed(5), train=False))
    shards = [list(tiny_pair.paired_batches(16, torch.Generator().manual_seed(5), train=False,
                                            rank=rank, world_size=4)) for rank in range(4)]
    assert all(len(batches) == len(one) == 3 for batches in shards)
    for step, (x_a, idx_a, x_b, idx_b) in enumerate(one):
        assert torch.equal(torch.cat([shard[step][1] for shard in shards]), idx_a)
        assert torch.equal(torch.cat([shard[step][3] for shard in shards]), idx_b)
        assert torch.equal(torch.cat([shard[step][2] for shard in shards]), x_b)
        assert all(len(shard[step][1]) == 4 for shard in shards)
    with pytest.raises(ValueError, match=r"batch_size=18 .* multiple of the number of processes \(4\); "
                                         r"valid nearby: 16, 20"):
        next(tiny_pair.paired_batches(18, torch.Generator(), rank=0, world_size=4))
    with pytest.raises(ValueError, match=r"rank=4 is outside 0..3"):
        next(tiny_pair.paired_batches(16, torch.Generator(), rank=4, world_size=4))


def test_alone_the_helpers_are_the_identity() -> None:
    assert not distributed.init_from_env("cpu")  # WORLD_SIZE unset: nothing to join
    rows = torch.arange(6.0).reshape(3, 2)
    assert distributed.all_gather_cat(rows) is rows
    assert distributed.clustered_on_main(lambda f: f.sum().item(), rows) == 15.0
    assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)
    module = nn.Sequential(nn.BatchNorm1d(2))
    assert distributed.synchronize_batchnorm(module) is module and distributed.wrap_ddp(module) is module
    assert type(module[0]) is nn.BatchNorm1d


def test_ddp_support_is_inherited_only_with_the_loop_that_has_it() -> None:
    import_all_components()
    instdisc = METHODS.get("instdisc")
    assert instdisc.supports_ddp
    # CDS, PCS and CoDA subclass InstDisc but run BankMethod's own fit, which is not distributed.
    assert not any(METHODS.get(name).supports_ddp for name in ("cds", "pcs", "coda", "uem"))

    class SameLoop(instdisc):
        """A variant with other defaults keeps InstDisc's fit, and its DDP support."""

    class OwnLoop(instdisc):
        def fit(self, pair, work_dir):
            raise NotImplementedError

    class OwnDistributedLoop(OwnLoop):
        supports_ddp = True

        def fit(self, pair, work_dir):
            raise NotImplementedError

    assert SameLoop.supports_ddp and not OwnLoop.supports_ddp and OwnDistributedLoop.supports_ddp


def _write_features(root: Path) -> Path:
    """Two 8-d domains of 4 classes × 6 rows, the second shifted."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 8)) * 2
    root.mkdir(parents=True)
    for shift, domain in enumerate(("art", "clipart")):
        labels = np.repeat(np.arange(4), 6)
        np.savez(root / f"{domain}.npz", fts=centres[labels] + shift + rng.normal(size=(24, 8)) * 0.5,
                 y=labels)
    return root


def _write_cell(root: Path, method_cfg: dict) -> Path:
    """A cell folder (``cell.json``) for ``method_cfg`` on a tiny feature pair; returns the folder."""
    cell_dir = root / "work" / "cell"
    cell_dir.mkdir(parents=True)
    spec = {"method": method_cfg["type"], "method_cfg": method_cfg, "dataset": "toy",
            "dataset_cfg": dict(type="features", root=str(_write_features(root / "toy")),
                                cache_dir=str(root / "cache")),
            "query": "art", "gallery": "clipart", "scenario": "closed", "seed": 0,
            "protocol_cfg": dict(type="uem"), "key": "toy-cell"}
    (cell_dir / CELL_SPEC_FILE).write_text(json.dumps({"spec": spec, "work_dir": str(root / "work"),
                                                       "device": "cpu"}))
    return cell_dir


@pytest.mark.slow
def test_torchrun_cell_trains_on_two_ranks_and_rank_zero_writes_the_record(tmp_path) -> None:
    """The documented command: ``torchrun --nproc_per_node=2 -m u2cdr.engine.cell CELL_DIR``."""
    cell_dir = _write_cell(tmp_path, dict(type="instdisc", backbone=dict(type="small_cnn"), epochs=2,
                                          batch_size=8, lr=0.05))
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={_free_port()}", "-m", "u2cdr.engine.cell", str(cell_dir)],
        env={**os.environ, "U2CDR_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=180)
    assert completed.returncode == 0, completed.stderr[-3000:]
    record = read_json(cell_dir / RESULT_FILE)
    assert record["status"] == "done" and read_json(cell_dir / STATUS_FILE)["state"] == "done"
    assert record["method_info"]["distributed"]["world_size"] == 2
    assert record["method_info"]["distributed"]["rank_batch"] == 4
    assert 0.0 <= record["metrics"]["map_all"] <= 100.0
    assert (cell_dir / "log.txt").is_file() and (cell_dir / "log.rank1.txt").is_file()
    assert "instdisc epoch 2/2" in (cell_dir / "log.rank1.txt").read_text()


@pytest.mark.slow
def test_a_method_without_ddp_support_is_refused_under_two_ranks(two_rank_results) -> None:
    results, out_dir = two_rank_results
    assert [result["refused_exit_code"] for result in results] == [1, 1]
    cell_dir = out_dir / "refused" / "work" / "cell"
    status = read_json(cell_dir / STATUS_FILE)
    assert status["state"] == "failed"
    assert "method 'pretrained' (Pretrained) does not support multi-process training" in status["error"]
    assert "WORLD_SIZE=2" in status["error"]
    assert not (cell_dir / RESULT_FILE).exists()
    assert "does not support multi-process training" in (cell_dir / "log.rank1.txt").read_text()
