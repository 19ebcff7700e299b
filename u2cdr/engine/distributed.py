"""One cell trained by several processes (``torchrun`` + PyTorch DDP): the few collective rules.

``torchrun --nproc_per_node=N -m u2cdr.engine.cell CELL_DIR`` starts N copies of the cell; each
calls ``init_from_env`` and joins one process group (NCCL on CUDA, Gloo on the CPU). The rules
that make N processes train like one (see ``InstDisc.fit``):

- the data: the config's ``batch_size`` is the *global* per-domain batch; each rank takes a
  contiguous ``batch_size / N`` slice of every global batch (``DomainPair.paired_batches``),
  so the ranks' slices, concatenated in rank order, are the one-process batch;
- the model: gradients are averaged by ``DistributedDataParallel``; BatchNorm statistics are
  taken over the global batch (``synchronize_batchnorm``), so a step does not depend on N;
- replicated state (memory banks) is updated with the batch gathered from every rank
  (``all_gather_cat``), so it stays identical everywhere without being broadcast;
- decisions that must agree (K-means centroids, anything from a non-deterministic library)
  are made once on rank 0 and broadcast (``clustered_on_main``);
- files (data caches, splits, checkpoints, status, results) are written by rank 0 only; the
  others wait at a ``barrier`` where they would read them (``main_first``).

Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) nothing is initialised and every helper is the
identity, so the one-process path runs exactly as before.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator, Mapping, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

T = TypeVar("T")

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def init_from_env(device: str | torch.device | None = None) -> bool:
    """Join the process group torchrun describes in the environment; True when distributed.

    Reads ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. A no-op
    (False) when ``WORLD_SIZE`` is unset or 1; idempotent when the group already exists. The
    backend is NCCL when ``device`` is CUDA (``None``: when CUDA is available), else Gloo. On
    CUDA each process is pinned to GPU ``LOCAL_RANK``, so a plain ``'cuda'`` means that rank's GPU.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return False
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world} but this torch build has no torch.distributed")
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise RuntimeError(f"WORLD_SIZE={world} but {', '.join(missing)} are not set; launch with "
                           "torchrun --nproc_per_node=N, which sets "
                           f"{', '.join(('WORLD_SIZE',) + TORCHRUN_VARIABLES)}")
    use_cuda = (torch.device(device).type == "cuda" if device is not None
                else torch.cuda.is_available())
    if use_cuda:
        local_rank = _env_int("LOCAL_RANK", 0)
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={str(device)!r} but CUDA is not available; use device='cpu' "
                               "for Gloo on the CPU")
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPUs are "
                               "visible; lower --nproc_per_node")
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://",
                            rank=_env_int("RANK", 0), world_size=world)
    return True


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise RuntimeError(f"environment variable {name}={value!r} is not an integer") from None


def is_distributed() -> bool:
    """True inside an initialised process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of ranks training the cell (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """Rank 0: the process that writes files and makes the decisions others receive."""
    return rank() == 0


def local_device(device: str | torch.device) -> torch.device:
    """``device`` for this rank: any CUDA device becomes the GPU ``init_from_env`` pinned."""
    resolved = torch.device(device)
    if resolved.type == "cuda" and is_distributed():
        return torch.device("cuda", torch.cuda.current_device())
    return resolved


def barrier() -> None:
    """Wait until every rank gets here (no-op when not distributed)."""
    if not is_distributed():
        return
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first, then the others (e.g. building a data cache or a split file).

    What rank 0 writes inside (caches, the cell's class split) the others then only read, so
    no two processes write the same file. No-op when not distributed.
    """
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def shutdown() -> None:
    """Leave the process group (end of a torchrun process); no-op when none exists."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's ``tensor`` concatenated along dim 0 in rank order, on every rank.

    The result carries no gradient (use it for replicated state such as memory banks). Ranks
    must pass the same shape; a mismatch is reported instead of hanging or mixing rows.
    """
    if not is_distributed():
        return tensor
    tensor = tensor.detach().contiguous()
    shape = torch.tensor(list(tensor.shape) or [1], dtype=torch.long, device=tensor.device)
    shapes = [torch.empty_like(shape) for _ in range(world_size())]
    dist.all_gather(shapes, shape)
    if any(not torch.equal(other, shape) for other in shapes):
        raise ValueError(f"all_gather_cat needs the same shape on every rank, got "
                         f"{[tuple(s.tolist()) for s in shapes]} for ranks 0..{world_size() - 1}")
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor)
    return torch.cat(parts) if tensor.dim() > 0 else torch.stack(parts)


def average_over_ranks(values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Scalar ``values`` (e.g. loss terms) averaged over ranks, detached; identity when alone.

    With equal per-rank batches the mean of the ranks' batch means is the global batch mean, so
    logs and divergence checks read the same numbers as a one-process run, and a NaN on any
    rank is seen by all of them (none waits forever in the next collective).
    """
    if not is_distributed():
        return dict(values)
    names = list(values)
    stacked = torch.stack([values[name].detach().float().reshape(()) for name in names])
    dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
    stacked /= world_size()
    return {name: stacked[index] for index, name in enumerate(names)}


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` (any picklable value) on every rank; ``obj`` itself when alone."""
    if not is_distributed():
        return obj
    holder = [obj if rank() == src else None]
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    dist.broadcast_object_list(holder, src=src, device=device)
    return holder[0]


def clustered_on_main(fn: Callable[[torch.Tensor], T], features: torch.Tensor,
                      sharded: bool = True) -> T:
    """``fn(features)`` computed once on rank 0 and broadcast, so every rank gets the same result.

    K-means (faiss) is not bitwise reproducible across processes (threading, GPU atomics), and
    ranks that cluster separately could disagree on centroids or even on cluster ids, after
    which their prototype losses would pull one shared model in different directions. The rule:
    rank 0 clusters, everyone receives its result (centroids, assignments, an Elbow K).

    Args:
        fn: the clustering, e.g. ``lambda f: kmeans(f.numpy(), k, seed)``; its result must be
            picklable.
        features: ``[n, D]``. ``sharded=True``: this rank's rows, gathered (rank order) before
            ``fn`` sees them (e.g. each rank embedded its slice of a domain). ``sharded=False``:
            already identical on every rank, such as a memory bank kept in sync by
            ``all_gather_cat`` — UEM's per-epoch prototypes (Eq. 7, K-means on M_A and M_B) and
            PCS's per-epoch K-means on its banks would call
            ``clustered_on_main(run_kmeans, bank.entries, sharded=False)``.

    Returns:
        ``fn``'s result on rank 0, received by every rank.
    """
    if not is_distributed():
        return fn(features)
    gathered = all_gather_cat(features) if sharded else features
    result = fn(gathered) if is_main() else None
    return broadcast_object(result)


class _SumOverRanks(torch.autograd.Function):
    """Differentiable all-reduce (sum): the backward of a sum over ranks is a sum over ranks."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        summed = tensor.clone()
        dist.all_reduce(summed, op=dist.ReduceOp.SUM)
        return summed

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        summed = grad.clone()
        dist.all_reduce(summed, op=dist.ReduceOp.SUM)
        return summed


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of all ranks, for Gloo (CPU), which ``nn.SyncBatchNorm`` refuses.

    Training statistics are the global mean and biased variance of each channel (two passes,
    sum then squared deviations, each summed over ranks with a differentiable all-reduce);
    running statistics take the unbiased variance, as ``F.batch_norm`` does. Outside a
    distributed group, or in eval mode, it is a plain BatchNorm. Parameter and buffer names are
    BatchNorm's, so checkpoints load either way.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"GlobalBatchNorm expects [N, C, ...] input, got shape {tuple(input.shape)}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(input)
        self._check_input_dim(input)
        reduce_dims = [0] + list(range(2, input.dim()))
        view = [1, -1] + [1] * (input.dim() - 2)
        count = torch.tensor(float(input.numel() // input.shape[1]), device=input.device)
        total = _SumOverRanks.apply(torch.cat([input.sum(reduce_dims), count.reshape(1)]))
        global_count = total[-1].detach()
        mean = total[:-1] / global_count
        centered = input - mean.reshape(view)
        variance = _SumOverRanks.apply((centered * centered).sum(reduce_dims)) / global_count
        output = centered * torch.rsqrt(variance + self.eps).reshape(view)
        if self.affine:
            output = output * self.weight.reshape(view) + self.bias.reshape(view)
        if self.track_running_stats and self.running_mean is not None:
            self._update_running_stats(mean.detach(), variance.detach(), global_count)
        return output

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, variance: torch.Tensor,
                              count: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                  else self.momentum)
        unbiased = variance * count / (count - 1).clamp(min=1)
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)


def _to_global_batchnorm(module: nn.Module) -> nn.Module:
    """Every ``BatchNorm1d/2d/3d`` of ``module`` as a ``GlobalBatchNorm`` sharing its tensors."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
            module, (GlobalBatchNorm, nn.SyncBatchNorm)):
        converted = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                    module.track_running_stats)
        if module.affine:
            converted.weight = module.weight
            converted.bias = module.bias
        converted.running_mean = module.running_mean
        converted.running_var = module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        module.add_module(name, _to_global_batchnorm(child))
    return module


def synchronize_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with BatchNorm statistics over the global batch when distributed (in place).

    Without it each rank normalises with the statistics of its own ``B / N`` images, so the
    result would depend on how many processes train (MoCo's per-GPU BN); with it an N-rank step
    equals the one-process step. CUDA uses ``nn.SyncBatchNorm``; Gloo, which it does not
    support, uses ``GlobalBatchNorm``. The parameters stay the same tensors, so an optimiser
    built before or after sees the same ones. Identity when not distributed.
    """
    if not is_distributed():
        return module
    if dist.get_backend() == "nccl":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_global_batchnorm(module)


def wrap_ddp(module: nn.Module) -> nn.Module:
    """``module`` inside ``DistributedDataParallel`` when distributed, else ``module`` itself.

    DDP broadcasts rank 0's parameters and buffers at construction, so every rank starts from
    the same model, and averages gradients in ``backward``.
    """
    if not is_distributed():
        return module
    if dist.get_backend() == "nccl":
        device = torch.cuda.current_device()
        return DistributedDataParallel(module, device_ids=[device], output_device=device)
    return DistributedDataParallel(module)
