"""UCDIR (Hu & Lee, ECCV 2022): per-domain momentum contrast + cluster-wise contrast +
cross-domain self-entropy + distance-of-distance; and the MoCo-style training skeleton that
ProtoOT and DG-UCDIR (both built on UCDIR's code) share with it.

UCDIR learns retrieval features from two unlabelled domains in two phases. During a warm-up
it only does instance contrast *within* each domain (MoCo query/key encoders, a memory with
one slot per image, holding that image's latest key). Afterwards it clusters each domain every
epoch (K-means on the key encoder's features) and adds (i) a cluster-wise contrast that makes
same-cluster images positives, (ii) a self-entropy term that makes every feature commit to
one prototype of each domain and (iii) a distance-of-distance term that asks the batch's
pairwise structure to look the same through either domain's prototypes. Retrieval ranks the
key encoder's normalised 128-d projections by cosine similarity.

Algorithm (``UCDIR.fit``):
    0. key encoder ← copy of the query encoder; M_A, M_B ← key-encoder eval features.
    1. for each epoch e:
         if e ≥ warm-up: for each domain, K-means on the key encoder's eval features
             → assignments a, normalised centroids P (count: ``num_clusters``).
         for each paired batch (two augmented views of B images of A and B of B):
             q = f_q(view 1 of A ∪ B);  k = f_k(view 2) (momentum update first, shuffled split BN)
             M[idx] ← k                                   (one slot per image, overwritten)
             L_inst^d = InstanceNCE_τ(q^d, M_d)            (positive = own slot = its key)
             if e ≥ warm-up:
                 L_cw^d = ClusterContrast(q^d, k^d, M_d, a_d, P_d)
                 L_se = mean_{X,Y} Entropy(q^X, P_Y);  L_dd = mean_X DistOfDist(q^X, P_A, P_B)
             L = ½ Σ_d (w_inst L_inst^d + w_cw(e) L_cw^d) + w_se L_se + w_dd L_dd
    2. retrieval features = normalised projection of the key encoder (UCDIR ``compute_features``).

Readings where the paper/code leave a choice, each a constructor kwarg recorded in ``describe``:
    - ``self_entropy_prototypes='both'``: UCDIR's released ``self_entropy_loss`` sums over the
      own *and* the other domain's prototypes; 'other' keeps only the cross-domain term.
    - ``num_clusters``: UCDIR's scripts set the true class count (65 / 7); here 'oracle',
      'elbow' (resolved once, at the first clustering epoch, per domain) or an int.
    - ``key_bn_splits=2``: UCDIR's key encoder uses SplitBatchNorm(2) on a shuffled batch; here
      the shuffled batch is run through the key encoder in that many chunks (same statistics).
    - a single clustering granularity (the scripts pass one ``--num-cluster``); UCDIR's code
      accepts a list and multiplies the positive masks.
    - per-step cosine learning rate (UCDIR anneals per epoch).
    - ``instance_negatives='memory'``: UCDIR contrasts against every slot of the memory. From
      a random initialisation (the digits benchmark) the slots go stale between visits and the
      queries learn to move away from them all together: measured on mnist/uci, the features
      collapse (mean cosine 0.999 after one epoch) and mAP stays at the random floor; 'batch'
      (the slots of the batch's images, i.e. the current keys) trains. Stated per record.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from u2cdr.data.pair import DomainData, DomainPair
from u2cdr.losses.cluster_contrast import ClusterContrast
from u2cdr.losses.cross_domain_entropy import CrossDomainEntropy
from u2cdr.losses.distance_of_distance import DistanceOfDistance
from u2cdr.losses.instance_nce import InstanceNCE
from u2cdr.methods._trainer import (GeneratorState, LossMeter, check_finite, cosine_lr, make_sgd,
                                    progress_bar, resolve_device, run_epochs, set_lr)
from u2cdr.methods.base import Method
from u2cdr.models.cluster_count import resolve_num_clusters
from u2cdr.models.clustering import kmeans
from u2cdr.models.encoder import EMBEDDINGS, Encoder, describe_encoder, embed_loader
from u2cdr.models.memory_bank import MomentumMemoryBank
from u2cdr.models.momentum import momentum_copy, momentum_update
from u2cdr.registry import BACKBONES, METHODS, build

logger = logging.getLogger("u2cdr")

DOMAINS = ("A", "B")
OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("cosine", "constant")
EMBED_ENCODERS = ("key", "query")
SELF_ENTROPY_PROTOTYPES = ("both", "other")
INSTANCE_NEGATIVES = ("memory", "batch")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is unknown; valid: {', '.join(choices)}")


def check_num_clusters(setting: Any) -> None:
    """Fail at construction, not after a warm-up, on a bad ``num_clusters``."""
    valid = setting in ("oracle", "elbow") or (
        isinstance(setting, (int, np.integer)) and not isinstance(setting, bool) and setting >= 2)
    if not valid:
        raise ValueError(f"num_clusters={setting!r} is invalid; valid: 'oracle', 'elbow' or an "
                         "int >= 2")


def base_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``MomentumContrastMethod.__init__`` takes, picked from a subclass's
    ``locals()`` — subclasses list every kwarg explicitly (the registry checks config keys
    against the signature) without restating the forwarding."""
    names = inspect.signature(MomentumContrastMethod.__init__).parameters
    return {name: arguments[name] for name in names if name not in ("self", "backbone")}


class TwoViews:
    """Two independent draws of a train transform, stacked ``[2, C, H, W]``: MoCo's query and
    key views of one image (UCDIR's ``TrainDataset`` returns both)."""

    def __init__(self, transform: Callable[[Any], torch.Tensor]) -> None:
        self.transform = transform

    def __call__(self, image: Any) -> torch.Tensor:
        return torch.stack([self.transform(image), self.transform(image)])

    def __repr__(self) -> str:
        return f"TwoViews({self.transform!r})"


def with_two_views(pair: DomainPair) -> DomainPair:
    """``pair`` whose training batches carry two augmented views per image ``[B, 2, C, H, W]``."""
    return replace(pair,
                   query=replace(pair.query, train_transform=TwoViews(pair.query.train_transform)),
                   gallery=replace(pair.gallery,
                                   train_transform=TwoViews(pair.gallery.train_transform)))


class TensorState:
    """Named tensors that must survive a restart (prototypes, resolved cluster counts); a
    ``Stateful`` for ``run_epochs`` whose entries may change shape between runs."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.tensors: dict[str, torch.Tensor] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def __setitem__(self, name: str, value: torch.Tensor) -> None:
        self.tensors[name] = value

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: value.detach().cpu() for name, value in self.tensors.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.tensors = {name: value.to(self.device) for name, value in state.items()}


class MomentumContrastMethod(Method):
    """The skeleton UCDIR, ProtoOT and DG-UCDIR share (not registered).

    A query encoder trained by gradient, a momentum key encoder fed a second augmented view
    through shuffled split BatchNorm, an optimiser with a per-step schedule, K-means with a
    count set by ``num_clusters``, resumable epochs and embedding. Subclasses fill in the hooks
    ``_setup``, ``_initialize``, ``_prepare_epoch``, ``_loss_terms``, ``_total_loss``,
    ``_after_step`` and ``_stateful``.
    """

    family: ClassVar[str] = "cross-domain retrieval"
    distance: ClassVar[str] = "cosine"
    trains: ClassVar[bool] = True
    stage: ClassVar[str] = "momentum_contrast"

    def __init__(self, backbone: dict, *, head: str, low_dim: int, epochs: int, batch_size: int,
                 lr: float, momentum: float, weight_decay: float, optimizer: str,
                 lr_schedule: str, temperature: float, key_momentum: float, key_bn_splits: int,
                 num_clusters: str | int, kmeans_niter: int, kmeans_nredo: int,
                 elbow_k_max: int | None, embedding: str, embed_encoder: str, device: str,
                 num_workers: int) -> None:
        check_choice("embedding", embedding, EMBEDDINGS)
        check_choice("embed_encoder", embed_encoder, EMBED_ENCODERS)
        check_choice("optimizer", optimizer, OPTIMIZERS)
        check_choice("lr_schedule", lr_schedule, LR_SCHEDULES)
        check_num_clusters(num_clusters)
        if epochs < 1 or batch_size < 2:
            raise ValueError(f"epochs must be >= 1 and batch_size >= 2, got {epochs} and "
                             f"{batch_size}")
        if not 1 <= key_bn_splits <= batch_size:
            raise ValueError(f"key_bn_splits must lie in 1..batch_size ({batch_size}), got "
                             f"{key_bn_splits}")
        if not 0.0 <= key_momentum < 1.0:
            raise ValueError(f"key_momentum must lie in [0, 1), got {key_momentum}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.device = resolve_device(device)
        self.backbone_cfg = dict(backbone)
        self.encoder = Encoder(build(BACKBONES, backbone, path="method.backbone"), head=head,
                               low_dim=low_dim, normalize=True).to(self.device)
        self.key_encoder = momentum_copy(self.encoder)
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.optimizer_kind = optimizer
        self.lr_schedule = lr_schedule
        self.temperature = temperature
        self.key_momentum = key_momentum
        self.key_bn_splits = key_bn_splits
        self.num_clusters = num_clusters
        self.kmeans_niter = kmeans_niter
        self.kmeans_nredo = kmeans_nredo
        self.elbow_k_max = elbow_k_max
        self.embedding = embedding
        self.embed_encoder = embed_encoder
        self.num_workers = num_workers
        # The harness seeds torch before building a method; K-means and the Elbow reuse it.
        self.seed = torch.initial_seed() % (2**31 - 1)
        self.state = TensorState(self.device)
        self.history: list[dict[str, float]] = []
        # Simulated pre-emption for tests and drills: stop right after saving this epoch.
        self.stop_after_epoch: int | None = None

    # ----------------------------------------------------------------- training skeleton
    def fit(self, pair: DomainPair, work_dir: Path) -> None:
        self.state = TensorState(self.device)
        self._setup(pair)
        optimizer = self._make_optimizer()
        generator = torch.Generator().manual_seed(torch.initial_seed())
        steps_per_epoch = pair.steps_per_epoch(self.batch_size)
        total_steps = self.epochs * steps_per_epoch
        two_view_pair = with_two_views(pair)

        def train_epoch(epoch: int) -> dict[str, float]:
            self._prepare_epoch(epoch, pair)
            self.encoder.train()
            self.key_encoder.train()
            meter = LossMeter()
            batches = progress_bar(two_view_pair.paired_batches(self.batch_size, generator,
                                                                num_workers=self.num_workers),
                                   total=steps_per_epoch,
                                   desc=f"{self.stage} {epoch + 1}/{self.epochs}")
            for step, (x_a, idx_a, x_b, idx_b) in enumerate(batches):
                set_lr(optimizer, self._learning_rate(epoch * steps_per_epoch + step, total_steps))
                terms = self._loss_terms(epoch, x_a.to(self.device, non_blocking=True),
                                         idx_a.to(self.device),
                                         x_b.to(self.device, non_blocking=True),
                                         idx_b.to(self.device))
                check_finite(terms, epoch + 1, step + 1)
                loss = self._total_loss(epoch, terms)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                self._after_step()
                meter.add({"loss": loss, **terms})
            return meter.means()

        self.history = run_epochs(
            stage=self.stage, epochs=self.epochs, work_dir=work_dir,
            stateful={"encoder": self.encoder, "key_encoder": self.key_encoder,
                      "optimizer": optimizer, "sampler": GeneratorState(generator),
                      "state": self.state, **self._stateful()},
            train_epoch=train_epoch, initialize=lambda: self._initialize(pair),
            stop_after_epoch=self.stop_after_epoch)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        parameters = self.encoder.parameters()
        if self.optimizer_kind == "sgd":
            return make_sgd(parameters, self.lr, self.momentum, self.weight_decay)
        # ProtoOT: Adam with AMSGrad, betas (0.9, 0.999).
        return torch.optim.Adam(parameters, lr=self.lr, betas=(0.9, 0.999),
                                weight_decay=self.weight_decay, amsgrad=True)

    def _learning_rate(self, step: int, total_steps: int) -> float:
        if self.lr_schedule == "constant":
            return self.lr
        return cosine_lr(self.lr, step, total_steps)

    @torch.no_grad()
    def _keys(self, images: torch.Tensor) -> torch.Tensor:
        """Key-encoder projections of ``images`` after MoCo's momentum update.

        The batch is shuffled and run in ``key_bn_splits`` chunks, so a key's BatchNorm
        statistics come from other images than its query's (MoCo's shuffle BN, which UCDIR
        simulates on one GPU with SplitBatchNorm), then put back in order.
        """
        momentum_update(self.key_encoder, self.encoder, self.key_momentum)
        order = torch.randperm(len(images)).to(images.device)
        keys = torch.cat([self.key_encoder(chunk)
                          for chunk in images[order].chunk(self.key_bn_splits)])
        return keys[torch.argsort(order)]

    # ------------------------------------------------------------------------ hooks
    def _setup(self, pair: DomainPair) -> None:
        """Build per-fit objects (memories, queues) before a fresh start or a resume."""

    def _initialize(self, pair: DomainPair) -> None:
        """Fresh start only (e.g. memory initialisation)."""

    def _prepare_epoch(self, epoch: int, pair: DomainPair) -> None:
        """Before epoch ``epoch`` (0-based): clustering and other per-epoch state."""

    def _loss_terms(self, epoch: int, x_a: torch.Tensor, idx_a: torch.Tensor, x_b: torch.Tensor,
                    idx_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """The named loss terms of one paired batch; every concrete method defines them."""
        raise NotImplementedError

    def _total_loss(self, epoch: int, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The weighted sum of ``terms`` at ``epoch`` (schedules differ per method)."""
        raise NotImplementedError

    def _after_step(self) -> None:
        """After the optimiser step (e.g. enqueue keys, which the backward pass needed)."""

    def _stateful(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ clustering
    def _cluster_count(self, name: str, features: np.ndarray, domains: list[DomainData]) -> int:
        """``num_clusters`` resolved once for ``name`` (kept across a resume).

        'oracle' reads only the number of distinct labels of ``domains`` (UEM App. B.2's
        customisation, flagged in ``describe()['flags']``); nothing else reads labels.
        """
        key = f"num_clusters_{name}"
        if key not in self.state:
            labels = (np.concatenate([np.asarray(domain.labels) for domain in domains])
                      if self.num_clusters == "oracle" else None)
            count = resolve_num_clusters(self.num_clusters, features, labels, seed=self.seed,
                                         k_max=self.elbow_k_max)
            logger.info("%s: %d clusters for %s (num_clusters=%r)", self.stage, count, name,
                        self.num_clusters)
            self.state[key] = torch.tensor(count)
        return int(self.state[key])

    def _kmeans(self, features: np.ndarray, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(normalised centroids [K, D], assignments [N])`` on the method's device (faiss L2
        K-means with UCDIR's settings: ``niter``, ``nredo``, 2000 points per centroid)."""
        centroids, assignments, _ = kmeans(features, count, seed=self.seed, niter=self.kmeans_niter,
                                           nredo=self.kmeans_nredo, max_points_per_centroid=2000)
        return (F.normalize(torch.from_numpy(centroids), dim=1).to(self.device),
                torch.from_numpy(assignments).to(self.device))

    def resolved_clusters(self) -> dict[str, int]:
        return {key.removeprefix("num_clusters_"): int(value)
                for key, value in self.state.tensors.items() if key.startswith("num_clusters_")}

    # ------------------------------------------------------------------- embedding
    def embed(self, domain: DomainData) -> np.ndarray:
        encoder = self.key_encoder if self.embed_encoder == "key" else self.encoder
        return embed_loader(encoder.embedding_module(self.embedding), self._loader(domain),
                            self.device, normalize=True)

    def _embed_head(self, encoder: nn.Module, domain: DomainData) -> np.ndarray:
        return embed_loader(encoder, self._loader(domain), self.device)

    def _loader(self, domain: DomainData) -> torch.utils.data.DataLoader:
        return domain.eval_loader(batch_size=max(2 * self.batch_size, 256),
                                  num_workers=self.num_workers)

    def describe(self) -> dict:
        return {
            **describe_encoder(self.encoder, self.backbone_cfg, self.embedding),
            "embed_encoder": self.embed_encoder,
            "distance": self.distance,
            "flags": {"num_clusters": self.num_clusters},
            "num_clusters_resolved": self.resolved_clusters(),
            "final_losses": self.history[-1] if self.history else None,
            "gap_decisions": {
                "optimizer": f"{self.optimizer_kind}, lr {self.lr} ({self.lr_schedule}, per step), "
                             f"weight decay {self.weight_decay}",
                "key_encoder": f"momentum {self.key_momentum}, shuffled batch run in "
                               f"{self.key_bn_splits} chunks (UCDIR's SplitBatchNorm)",
                "key_encoder_buffers": "BatchNorm running statistics copied from the query encoder "
                                       "at every momentum update (u2cdr.models.momentum)",
                "views": "two independent draws of the dataset's train transform per image",
                "batch": "batch_size images from each domain per step (UCDIR's paired loader)",
                "num_clusters_resolution": "'elbow'/'oracle' resolved once, at the first "
                                           "clustering, and kept (UCDIR uses one fixed count)",
                "kmeans": f"faiss L2, niter {self.kmeans_niter}, nredo {self.kmeans_nredo}, at "
                          "most 2000 points per centroid, centroids L2-normalised afterwards",
            },
        }


class InstanceMemoryMethod(MomentumContrastMethod):
    """UCDIR's instance step, shared with ProtoOT (not registered).

    Each domain has a memory with one slot per image that always holds the image's latest key
    (``MomentumMemoryBank`` with momentum 0, i.e. overwrite — UCDIR's ``index_copy_`` queue),
    initialised with the key encoder's eval features. Each step the batch's keys are written
    first, so the query's own slot is its positive (InstanceNCE over the whole memory).
    """

    def _setup(self, pair: DomainPair) -> None:
        self.banks = {domain: MomentumMemoryBank(len(data), self.encoder.out_dim, momentum=0.0,
                                                 renormalize=True).to(self.device)
                      for domain, data in zip(DOMAINS, (pair.query, pair.gallery))}

    def _initialize(self, pair: DomainPair) -> None:
        for domain, data in zip(DOMAINS, (pair.query, pair.gallery)):
            features = self._embed_head(self.key_encoder, data)
            self.banks[domain].initialize(torch.from_numpy(features))

    def _stateful(self) -> dict[str, Any]:
        return {f"memory_{domain}": bank for domain, bank in self.banks.items()}

    def _loss_terms(self, epoch: int, x_a: torch.Tensor, idx_a: torch.Tensor, x_b: torch.Tensor,
                    idx_b: torch.Tensor) -> dict[str, torch.Tensor]:
        views = torch.cat([x_a, x_b])                           # [2B, 2, C, H, W]
        queries = self.encoder(views[:, 0]).split(len(x_a))     # one pass, as UCDIR
        keys = self._keys(views[:, 1]).split(len(x_a))
        indices = (idx_a, idx_b)
        for domain, index, key in zip(DOMAINS, indices, keys):
            self.banks[domain].update(index, key)
        batch = {domain: (query, key, index)
                 for domain, query, key, index in zip(DOMAINS, queries, keys, indices)}
        return self._memory_terms(epoch, batch)

    def _memory_terms(self, epoch: int, batch: Mapping[str, tuple[torch.Tensor, torch.Tensor,
                                                                   torch.Tensor]]
                      ) -> dict[str, torch.Tensor]:
        """Loss terms from ``batch[domain] = (queries, keys, indices)`` and the memories."""
        raise NotImplementedError

    def _use_instance_contrast(self, temperature: float, negatives: str) -> None:
        """UCDIR's instance term: 'memory' negatives (every slot, UCDIR) or 'batch' (the slots
        of the batch's images only, i.e. the current keys: MoCo without stale entries)."""
        check_choice("instance_negatives", negatives, INSTANCE_NEGATIVES)
        self.instance_negatives = negatives
        self.instance_nce = InstanceNCE(temperature=temperature,
                                        negatives="bank" if negatives == "memory" else "batch")

    def instance_terms(self, batch: Mapping[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
                       ) -> dict[str, torch.Tensor]:
        """``L_inst_<domain>``: InstanceNCE of the queries against the domain's memory, whose
        slots of the batch already hold the batch's keys (own slot = positive)."""
        return {f"L_inst_{domain}": self.instance_nce(query, index, self.banks[domain].entries)
                for domain, (query, _, index) in batch.items()}

    def describe(self) -> dict:
        description = super().describe()
        description["gap_decisions"]["instance_negatives"] = (
            f"{self.instance_negatives} ('memory' = every slot, as UCDIR; 'batch' = the batch's "
            "current keys only, for training from scratch where stale slots let features "
            "collapse)")
        return description


@METHODS.register_module(name="ucdir")
class UCDIR(InstanceMemoryMethod):
    """UCDIR (Hu & Lee, ECCV 2022): MoCo, cluster-wise contrast, self-entropy, distance-of-distance.

    Defaults are UCDIR's Office-Home script (``scripts/office-home.sh``); see the module
    docstring for the algorithm and the readings.

    Args:
        backbone: backbone config, e.g. ``dict(type='resnet50', checkpoint=...)``.
        head: projection head kind ('mlp' = MoCo-v2's ``--mlp``).
        low_dim: projection width (128).
        epochs: training epochs (200); an epoch covers the larger domain once.
        batch_size: images per domain per step (64).
        lr, momentum, weight_decay: SGD (2e-4, 0.9, 1e-4).
        optimizer: 'sgd' (UCDIR) or 'adam'.
        lr_schedule: 'cosine' (``--cos``) or 'constant'.
        temperature: τ of instance and cluster-wise contrast (0.2).
        key_momentum: MoCo key-encoder momentum (0.999).
        key_bn_splits: chunks of the shuffled key batch (SplitBatchNorm, 2).
        num_clusters: 'oracle', 'elbow' or an int (the scripts use the class count: 65 / 7).
        warmup_epochs: instance contrast only before this epoch (20); K-means, cluster-wise
            contrast, self-entropy and distance-of-distance start here (UCDIR's four
            ``*-startepoch`` flags all default to 20).
        instance_negatives: 'memory' (every slot, UCDIR) or 'batch' (the batch's current keys;
            for training from scratch, where stale slots let the features collapse).
        instance_weight: weight of instance contrast (1.0).
        cwcon_weight_start, cwcon_weight_saturate: cluster-wise weight at the warm-up epoch
            and after ``cwcon_saturate_epoch`` (0 → 1, linear in between; 100 of 200 epochs).
        cwcon_saturate_epoch: see above.
        cwcon_filter_threshold: θ of the cluster-wise filter (0.2).
        self_entropy_temperature: τ of self-entropy (0.01 Office-Home, 0.1 DomainNet).
        self_entropy_weight: 1.0 (Office-Home), 0.5 (DomainNet).
        self_entropy_prototypes: 'both' (released code) or 'other' (cross-domain only).
        distofdist_temperature: τ of the soft assignments (0.01, hard-coded in UCDIR).
        distofdist_weight: 0.5 (Office-Home), 0.1 (DomainNet).
        kmeans_niter, kmeans_nredo: faiss K-means iterations and restarts (20, 5).
        elbow_k_max: largest count the Elbow search tries (None: the estimator's default).
        embedding: 'head' (projection, UCDIR) or 'backbone' (pooled features).
        embed_encoder: 'key' (momentum encoder, UCDIR) or 'query'.
        device: 'cpu' or 'cuda'.
        num_workers: data-loader worker processes.
    """

    stage: ClassVar[str] = "ucdir"

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 200,
                 batch_size: int = 64, lr: float = 2e-4, momentum: float = 0.9,
                 weight_decay: float = 1e-4, optimizer: str = "sgd", lr_schedule: str = "cosine",
                 temperature: float = 0.2, key_momentum: float = 0.999, key_bn_splits: int = 2,
                 num_clusters: str | int = "oracle", warmup_epochs: int = 20,
                 instance_negatives: str = "memory", instance_weight: float = 1.0,
                 cwcon_weight_start: float = 0.0, cwcon_weight_saturate: float = 1.0,
                 cwcon_saturate_epoch: int = 100,
                 cwcon_filter_threshold: float = 0.2, self_entropy_temperature: float = 0.01,
                 self_entropy_weight: float = 1.0, self_entropy_prototypes: str = "both",
                 distofdist_temperature: float = 0.01, distofdist_weight: float = 0.5,
                 kmeans_niter: int = 20, kmeans_nredo: int = 5, elbow_k_max: int | None = None,
                 embedding: str = "head", embed_encoder: str = "key", device: str = "cpu",
                 num_workers: int = 0) -> None:
        super().__init__(backbone, **base_arguments(locals()))
        check_choice("self_entropy_prototypes", self_entropy_prototypes, SELF_ENTROPY_PROTOTYPES)
        if warmup_epochs < 0 or cwcon_saturate_epoch < warmup_epochs:
            raise ValueError(f"need 0 <= warmup_epochs <= cwcon_saturate_epoch, got "
                             f"{warmup_epochs} and {cwcon_saturate_epoch}")
        self.warmup_epochs = warmup_epochs
        self.instance_weight = instance_weight
        self.cwcon_weight_start = cwcon_weight_start
        self.cwcon_weight_saturate = cwcon_weight_saturate
        self.cwcon_saturate_epoch = cwcon_saturate_epoch
        self.self_entropy_weight = self_entropy_weight
        self.self_entropy_prototypes = self_entropy_prototypes
        self.distofdist_weight = distofdist_weight
        self._use_instance_contrast(temperature, instance_negatives)
        self.cluster_contrast = ClusterContrast(temperature, cwcon_filter_threshold)
        # UCDIR's self-entropy is CDS/PCS's entropy over anchors, with prototypes as anchors.
        self.self_entropy = CrossDomainEntropy(self_entropy_temperature)
        self.distance_of_distance = DistanceOfDistance(distofdist_temperature)
        self.clusters: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def cwcon_weight(self, epoch: int) -> float:
        """UCDIR's ramp: start weight up to the warm-up epoch, linear to the saturation epoch."""
        if epoch <= self.warmup_epochs:
            return self.cwcon_weight_start
        if epoch < self.cwcon_saturate_epoch:
            span = self.cwcon_saturate_epoch - self.warmup_epochs
            progress = (epoch - self.warmup_epochs) / span
            return self.cwcon_weight_start + (self.cwcon_weight_saturate
                                              - self.cwcon_weight_start) * progress
        return self.cwcon_weight_saturate

    def _prepare_epoch(self, epoch: int, pair: DomainPair) -> None:
        """From the warm-up on: per-domain K-means on the key encoder's eval features."""
        self.clusters = {}
        if epoch < self.warmup_epochs:
            return
        for domain, data in zip(DOMAINS, (pair.query, pair.gallery)):
            features = self._embed_head(self.key_encoder, data)
            count = self._cluster_count(domain, features, [data])
            self.clusters[domain] = self._kmeans(features, count)

    def _memory_terms(self, epoch: int, batch: Mapping[str, tuple[torch.Tensor, torch.Tensor,
                                                                   torch.Tensor]]
                      ) -> dict[str, torch.Tensor]:
        terms = self.instance_terms(batch)
        if not self.clusters:
            return terms
        prototypes = {domain: self.clusters[domain][0] for domain in DOMAINS}
        for domain, (query, key, index) in batch.items():
            assignments = self.clusters[domain][1]
            terms[f"L_cwcon_{domain}"] = self.cluster_contrast(
                query, key, index, self.banks[domain].entries, assignments, prototypes[domain])
        pairs = [(feature_domain, proto_domain) for feature_domain in DOMAINS
                 for proto_domain in DOMAINS
                 if self.self_entropy_prototypes == "both" or feature_domain != proto_domain]
        terms["L_selfentropy"] = torch.stack([
            self.self_entropy(batch[feature_domain][0], prototypes[proto_domain])
            for feature_domain, proto_domain in pairs]).mean()
        terms["L_distofdist"] = torch.stack([
            self.distance_of_distance(batch[domain][0], prototypes["A"], prototypes["B"])
            for domain in DOMAINS]).mean()
        return terms

    def _total_loss(self, epoch: int, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        per_domain = [self.instance_weight * terms[f"L_inst_{domain}"] for domain in DOMAINS]
        if "L_cwcon_A" in terms:
            weight = self.cwcon_weight(epoch)
            per_domain = [loss + weight * terms[f"L_cwcon_{domain}"]
                          for loss, domain in zip(per_domain, DOMAINS)]
        loss = (per_domain[0] + per_domain[1]) / 2
        if "L_selfentropy" in terms:
            loss = (loss + self.self_entropy_weight * terms["L_selfentropy"]
                    + self.distofdist_weight * terms["L_distofdist"])
        return loss

    def describe(self) -> dict:
        description = super().describe()
        description["gap_decisions"].update({
            "self_entropy_prototypes": f"{self.self_entropy_prototypes} ('both' = released code: "
                                       "own and other domain's prototypes; 'other' = cross-domain "
                                       "only)",
            "schedule": f"warm-up {self.warmup_epochs} epochs (K-means, cluster-wise contrast, "
                        f"self-entropy, distance-of-distance start together); cluster-wise weight "
                        f"{self.cwcon_weight_start} -> {self.cwcon_weight_saturate} by epoch "
                        f"{self.cwcon_saturate_epoch}",
            "memory": "one slot per image holding its latest key (overwrite), initialised with "
                      "the key encoder's eval features; keys written before the loss",
            "clustering_features": "key encoder's normalised projections of the eval view, "
                                   "recomputed at the start of every epoch after the warm-up",
            "granularity": "one K-means per domain (the scripts pass one --num-cluster)",
        })
        return description

