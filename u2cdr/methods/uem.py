"""UEM (Wang, Du, Zhu, NeurIPS 2024): Unified, Enhanced and Matched semantic feature learning.

Two stages on one shared encoder ``f_θ`` (head output, L2-normalised), with one momentum memory
bank per domain (Eq. 5) kept up to date in both stages.

Stage 1, IDSE (``idse_epochs``), for each epoch e of E:
    α ← 1 / (1 + exp(0.5E − e))                                                   (Eq. 10)
    K-means on M_A and M_B, Ĉ per domain by the Elbow method                      (Eq. 7)
    translate P^B by M̄_A − M̄_B, Hungarian-match, merge close pairs → P^{A'}, P^{B'} (Eqs. 8–9)
    per step:  L = Σ_{X∈{A,B}} INCE^X + α·PNCE^X(P^{X'}) + α·SEL^X(P^{X'})       (Eqs. 6, 7, 11, 12)
Stage 2, CDSM (``cdsm_epochs``), with f'_θ = frozen copy of the stage-1 encoder and a
two-layer domain classifier g_ω behind gradient reversal, for each epoch:
    re-cluster and re-merge as above (Figure 1 shows it in both stages)
    per step:  L = DAL + SPR^A + SPR^B + SN²M^A + SN²M^B                          (Eqs. 13–18)
Retrieval: normalised head features ranked by Euclidean distance (on unit vectors δ of
App. B is d³/2, so both rank alike), optionally after removing each domain's mean
(``retrieval_space='centered'``, Eq. 8's translation at test time). Open set: App. B.1's
detector (``uem_open_set``).

Every reading the paper leaves open (uem.md §8) is a constructor argument below and is listed
in ``describe()['gaps']``. The registered ablations of Table 4 are switches of this class.
"""
from __future__ import annotations

import inspect
import logging
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from u2cdr.data.pair import DomainData, DomainPair
from u2cdr.losses.adversarial import domain_adversarial_loss
from u2cdr.losses.instance_nce import InstanceNCE
from u2cdr.losses.proto_nce import ProtoNCE
from u2cdr.losses.semantic_enhanced import SemanticEnhancedLoss
from u2cdr.losses.semantic_preserving import SemanticPreservingLoss
from u2cdr.losses.sn2m import CrossDomainNeighbourLoss, SwitchableNearestNeighbourMatch
from u2cdr.methods._trainer import (GeneratorState, LossMeter, check_finite, cosine_lr, make_sgd,
                                    progress_bar, resolve_device, run_epochs, set_lr)
from u2cdr.methods.base import Method
from u2cdr.methods.uem_open_set import detect_private_uem
from u2cdr.methods.uem_prototypes import EpochPrototypes, PrototypeBuilder, faiss_threads
from u2cdr.models.domain_classifier import DomainClassifier
from u2cdr.models.encoder import EMBEDDINGS, Encoder, describe_encoder, embed_loader
from u2cdr.models.grl import dann_coefficient
from u2cdr.models.memory_bank import MomentumMemoryBank
from u2cdr.models.momentum import momentum_copy
from u2cdr.models.prototypes import MERGE_THRESHOLDS, ElbowSettings
from u2cdr.registry import BACKBONES, METHODS, build

logger = logging.getLogger("u2cdr")

MATCHINGS = ("sn2m", "nearest_neighbour")
GRL_SCHEDULES = ("constant", "dann")
FROZEN_BATCHNORM = ("batch", "running")
RETRIEVAL_SPACES = ("raw", "centered")
SN2M_NEGATIVES = ("bank", "batch")


def progressive_weight(epoch: int, total_epochs: int) -> float:
    """Eq. 10: α = 1 / (1 + exp(0.5E − e)), e the 0-based IDSE epoch, E the IDSE epochs."""
    exponent = 0.5 * total_epochs - epoch
    return 0.0 if exponent > 700 else 1.0 / (1.0 + math.exp(exponent))


def center_domain(features: np.ndarray) -> np.ndarray:
    """``retrieval_space='centered'``: one domain's features minus their mean, re-normalised.

    Eq. 8 moves one domain onto the other by the difference of their means; removing each
    domain's own mean does the same for retrieval without choosing a direction.
    """
    centered = features - features.mean(axis=0, keepdims=True)
    return (centered / np.maximum(np.linalg.norm(centered, axis=1, keepdims=True), 1e-12)
            ).astype(np.float32)


def _merge_reading(merge_threshold: str) -> str:
    """How a record names the Eq. 9 reading in force."""
    if merge_threshold == "global":
        return "one threshold, the smallest intra-domain prototype gap (as printed)"
    return ("per-pair threshold, the pair's own nearest same-domain gaps (NOT the paper's "
            "global minimum)")


def _choice(value: Any, name: str, choices: tuple) -> Any:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is unknown; valid: {', '.join(map(str, choices))}")
    return value


@METHODS.register_module(name="uem")
class UEM(Method):
    """UEM: unified prototypes, semantic enhancement and matched alignment (Wang et al., NeurIPS 2024).

    Args:
        backbone, head, low_dim: the encoder (``Encoder``), as ``instdisc``.
        idse_epochs, cdsm_epochs: epochs of stage 1 (E of Eq. 10) and stage 2.
        batch_size: images per domain per step (64 + 64 in the paper).
        lr, cdsm_lr: initial learning rates, cosine-annealed to zero within each stage;
            ``cdsm_lr`` None reuses ``lr`` [GAP §8.21].
        momentum, weight_decay: SGD settings.
        temperature: τ of every loss (0.07).
        bank_momentum, renormalize_bank: β of Eq. 5 and NPID renormalisation [GAP].
        negatives: Eq. 6 negatives, 'bank' (text) or 'batch' (printed sum) [GAP §8.2].
        num_clusters: 'elbow' (the paper), an int, or 'oracle' (true class count; flagged).
        elbow_k_min, elbow_k_max, elbow_k_step, elbow_criterion: the Elbow search [GAP §8.5].
        elbow_every: re-estimate Ĉ every this many epochs, else reuse it [GAP §8.5].
        cluster_start_alpha: skip clustering (and PNCE/SEL) while α is below this [GAP §8.6].
        kmeans_niter: Lloyd iterations of each K-means.
        merge_prototypes: Eq. 9 merging (False: ablation "w/o P.M.").
        merge_scale: multiplier of Eq. 9's threshold (1.0 = the paper's condition).
        merge_threshold: 'global' (Eq. 9 as printed: every pair against the smallest
            prototype gap inside either domain) or 'local' (not the paper: each pair against
            its own members' nearest same-domain gaps) [a reading of Eq. 9; ``unify_prototypes``].
        normalize_logit_prototypes: normalised centroids in dot-product logits [GAP §8.4].
        use_sel: SEL term (False: ablation "w/o SEL").
        sel_detach_weights: stop SEL's gradient through its softmax weights [GAP §8.8].
        use_spr: SPR term (False: ablation "w/o SPDA", adversarial alignment alone).
        matching: 'sn2m' or 'nearest_neighbour' (ablation "w/o SN²M") [GAP §8.12].
        sn2m_negatives: the instance terms of Eq. 17's denominator, 'bank' (all N_B entries
            of the other memory bank, uem.md's reading) or 'batch' (the bank entries of the
            other domain's current batch); the neighbour search always covers the bank [GAP §8.10].
        classifier_hidden: width of g_ω's hidden layer [GAP §8.9].
        grl_schedule, grl_coefficient: gradient-reversal weight, 'constant' or DANN's ramp
            to ``grl_coefficient`` over CDSM [GAP §8.9].
        frozen_batchnorm: BatchNorm of f'_θ, 'batch' (batch statistics, as f_θ in training,
            so SPR starts at 0) or 'running' (eval mode) [GAP].
        embedding: retrieval features, 'head' or 'backbone' [GAP §2.3].
        retrieval_space: 'raw' (f_θ as it is) or 'centered': each domain's features minus
            that domain's mean, re-normalised — Eq. 8's mean translation applied at test time,
            so both domains are compared in the unified space [GAP §2.3, §8.13].
        open_set_num_clusters: cluster counts of App. B.1's detector ('elbow' or int).
        open_set_elbow_k_range: ``(k_min, k_max, k_step)`` of the detector's Elbow search;
            None reuses training's (the paper has one Elbow method) [GAP §2.4].
        open_set_merge_scale: Eq. 9 multiplier at detection; None reuses ``merge_scale``.
        open_set_merge_threshold: Eq. 9 reading at detection; None reuses ``merge_threshold``.
        clustering_threads: faiss OpenMP threads while clustering (None: faiss's own).
        device, num_workers: as every method.
    """

    family: ClassVar[str] = "cross-domain retrieval"
    distance: ClassVar[str] = "euclidean"
    trains: ClassVar[bool] = True
    # Added after the digits results; at these values UEM behaves as before (Eq. 9 as printed).
    neutral_defaults: ClassVar[dict[str, object]] = {"merge_threshold": "global",
                                                     "open_set_merge_threshold": None}

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128,
                 idse_epochs: int = 100, cdsm_epochs: int = 50, batch_size: int = 64,
                 lr: float = 2e-4, cdsm_lr: float | None = None, momentum: float = 0.9,
                 weight_decay: float = 1e-4, temperature: float = 0.07,
                 bank_momentum: float = 0.99, renormalize_bank: bool = True,
                 negatives: str = "bank", num_clusters: str | int = "elbow",
                 elbow_k_min: int = 2, elbow_k_max: int | None = None, elbow_k_step: int = 1,
                 elbow_criterion: str = "kneedle", elbow_every: int = 1,
                 cluster_start_alpha: float = 0.0, kmeans_niter: int = 20,
                 merge_prototypes: bool = True, merge_scale: float = 1.0,
                 merge_threshold: str = "global",
                 normalize_logit_prototypes: bool = True, use_sel: bool = True,
                 sel_detach_weights: bool = False, use_spr: bool = True, matching: str = "sn2m",
                 sn2m_negatives: str = "bank",
                 classifier_hidden: int = 256, grl_schedule: str = "constant",
                 grl_coefficient: float = 1.0, frozen_batchnorm: str = "batch",
                 embedding: str = "head", retrieval_space: str = "raw",
                 open_set_num_clusters: str | int = "elbow",
                 open_set_elbow_k_range: tuple[int, int, int] | None = None,
                 open_set_merge_scale: float | None = None,
                 open_set_merge_threshold: str | None = None, clustering_threads: int | None = 1,
                 device: str = "cpu", num_workers: int = 0) -> None:
        # Every argument except the run-time ones, as describe() records them.
        self.options = {name: value for name, value in locals().items()
                        if name not in ("self", "backbone", "device", "num_workers", "__class__")}
        self.options["cdsm_lr"] = lr if cdsm_lr is None else cdsm_lr
        self.options["open_set_merge_scale"] = (merge_scale if open_set_merge_scale is None
                                                else open_set_merge_scale)
        self.options["open_set_merge_threshold"] = (merge_threshold
                                                    if open_set_merge_threshold is None
                                                    else open_set_merge_threshold)
        for name in ("merge_threshold", "open_set_merge_threshold"):
            _choice(self.options[name], name, MERGE_THRESHOLDS)
        _choice(embedding, "embedding", EMBEDDINGS)
        _choice(retrieval_space, "retrieval_space", RETRIEVAL_SPACES)
        _choice(matching, "matching", MATCHINGS)
        _choice(sn2m_negatives, "sn2m_negatives", SN2M_NEGATIVES)
        _choice(grl_schedule, "grl_schedule", GRL_SCHEDULES)
        _choice(frozen_batchnorm, "frozen_batchnorm", FROZEN_BATCHNORM)
        if idse_epochs < 1 or cdsm_epochs < 0 or batch_size < 1 or elbow_every < 1:
            raise ValueError(f"need idse_epochs >= 1, cdsm_epochs >= 0, batch_size >= 1 and "
                             f"elbow_every >= 1; got {idse_epochs}, {cdsm_epochs}, {batch_size}, "
                             f"{elbow_every}")
        self.device = resolve_device(device)
        self.backbone_cfg = dict(backbone)
        self.encoder = Encoder(build(BACKBONES, backbone, path="method.backbone"), head=head,
                               low_dim=low_dim, normalize=True).to(self.device)
        self.domain_classifier = DomainClassifier(self.encoder.out_dim,
                                                  classifier_hidden).to(self.device)
        self.instance_nce = InstanceNCE(temperature=temperature, negatives=negatives)
        self.proto_nce = ProtoNCE(temperature=temperature)
        self.sel = SemanticEnhancedLoss(temperature=temperature, detach_weights=sel_detach_weights)
        self.spr = SemanticPreservingLoss()
        self.sn2m = SwitchableNearestNeighbourMatch(temperature=temperature)
        self.neighbour_loss = CrossDomainNeighbourLoss(temperature=temperature)
        self.seed = int(torch.initial_seed() % 2**31)
        self.elbow = ElbowSettings(elbow_k_min, elbow_k_max, elbow_k_step, elbow_criterion,
                                   kmeans_niter)
        self.open_set_elbow = self.elbow if open_set_elbow_k_range is None else ElbowSettings(
            *open_set_elbow_k_range, criterion=elbow_criterion, niter=kmeans_niter)
        self.prototypes = PrototypeBuilder(
            num_clusters=num_clusters, elbow=self.elbow, elbow_every=elbow_every,
            merge=merge_prototypes, merge_scale=merge_scale, merge_threshold=merge_threshold,
            normalize_logit_prototypes=normalize_logit_prototypes, kmeans_niter=kmeans_niter,
            seed=self.seed, threads=clustering_threads)
        self.num_workers = num_workers
        self.history: dict[str, list[dict[str, float]]] = {"idse": [], "cdsm": []}
        self.open_set_report: dict | None = None
        # Simulated pre-emption for tests and drills: {'idse' or 'cdsm': epoch to stop after}.
        self.stop_after: dict[str, int] = {}

    # ------------------------------------------------------------------ training
    def fit(self, pair: DomainPair, work_dir: Path) -> None:
        opt = self.options
        banks = {domain: MomentumMemoryBank(len(data), self.encoder.out_dim, opt["bank_momentum"],
                                            opt["renormalize_bank"]).to(self.device)
                 for domain, data in (("A", pair.query), ("B", pair.gallery))}
        generator = torch.Generator().manual_seed(torch.initial_seed())
        oracle = ({"A": pair.query.labels, "B": pair.gallery.labels}
                  if opt["num_clusters"] == "oracle" else None)
        steps = pair.steps_per_epoch(opt["batch_size"])
        shared_state = {"bank_A": banks["A"], "bank_B": banks["B"],
                        "sampler": GeneratorState(generator), "cluster_counts": self.prototypes.counts}

        def cluster(epoch: int) -> EpochPrototypes:
            return self.prototypes.build({d: banks[d].entries for d in banks}, epoch, oracle)

        def batches(stage: str, epoch: int, epochs: int):
            return enumerate(progress_bar(
                pair.paired_batches(opt["batch_size"], generator, num_workers=self.num_workers),
                total=steps, desc=f"uem {stage} {epoch + 1}/{epochs}"))

        def initialize_banks() -> None:
            banks["A"].initialize(torch.from_numpy(self._embed_head(pair.query)))
            banks["B"].initialize(torch.from_numpy(self._embed_head(pair.gallery)))

        # Stage 1: IDSE (Eqs. 5–12).
        idse_epochs = opt["idse_epochs"]
        optimizer = make_sgd(self.encoder.parameters(), opt["lr"], opt["momentum"], opt["weight_decay"])

        def idse_epoch(epoch: int) -> dict[str, float]:
            alpha = progressive_weight(epoch, idse_epochs)
            prototypes = cluster(epoch) if alpha >= opt["cluster_start_alpha"] else None
            self.encoder.train()
            meter = LossMeter()
            for step, (x_a, idx_a, x_b, idx_b) in batches("idse", epoch, idse_epochs):
                set_lr(optimizer, cosine_lr(opt["lr"], epoch * steps + step, idse_epochs * steps))
                features = {"A": self.encoder(x_a.to(self.device)), "B": self.encoder(x_b.to(self.device))}
                indices = {"A": idx_a, "B": idx_b}
                terms = {f"L_INCE_{d}": self.instance_nce(features[d], indices[d], banks[d].entries)
                         for d in banks}
                if prototypes is not None:
                    terms.update(self._idse_prototype_terms(features, indices, prototypes))
                check_finite(terms, epoch + 1, step + 1)
                loss = sum(value if name.startswith("L_INCE") else alpha * value
                           for name, value in terms.items())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                for d in banks:
                    banks[d].update(indices[d], features[d])
                meter.add({"loss": loss, **terms})
            return {**meter.means(), "alpha": alpha,
                    **(prototypes.summary() if prototypes is not None else {})}

        self.history["idse"] = run_epochs(
            stage="idse", epochs=idse_epochs, work_dir=work_dir,
            stateful={"encoder": self.encoder, "optimizer": optimizer, **shared_state},
            train_epoch=idse_epoch, initialize=initialize_banks,
            stop_after_epoch=self.stop_after.get("idse"))
        if opt["cdsm_epochs"] == 0:
            return

        # Stage 2: CDSM (Eqs. 13–18). f'_θ is the finished stage-1 encoder (reloaded from the
        # idse checkpoint on a resume), so it is not stored again.
        frozen = self._frozen_copy()
        cdsm_epochs = opt["cdsm_epochs"]
        optimizer = make_sgd(list(self.encoder.parameters()) + list(self.domain_classifier.parameters()),
                             opt["cdsm_lr"], opt["momentum"], opt["weight_decay"])

        def cdsm_epoch(epoch: int) -> dict[str, float]:
            prototypes = cluster(idse_epochs + epoch)
            self.encoder.train()
            self.domain_classifier.train()
            meter = LossMeter()
            pair_rates = []
            for step, (x_a, idx_a, x_b, idx_b) in batches("cdsm", epoch, cdsm_epochs):
                progress = (epoch * steps + step) / (cdsm_epochs * steps)
                set_lr(optimizer, cosine_lr(opt["cdsm_lr"], epoch * steps + step, cdsm_epochs * steps))
                images = {"A": x_a.to(self.device), "B": x_b.to(self.device)}
                features = {d: self.encoder(images[d]) for d in images}
                terms = {"L_DAL": domain_adversarial_loss(self.domain_classifier, features["A"],
                                                          features["B"], self._grl(progress))}
                if opt["use_spr"]:
                    with torch.no_grad():
                        frozen_features = {d: frozen(images[d]) for d in images}
                    terms.update({f"L_SPR_{d}": self.spr(features[d], frozen_features[d])
                                  for d in images})
                matched, rate = self._matching_terms(features, {"A": idx_a, "B": idx_b}, banks,
                                                     prototypes)
                terms.update(matched)
                check_finite(terms, epoch + 1, step + 1)
                loss = sum(terms.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                banks["A"].update(idx_a, features["A"])
                banks["B"].update(idx_b, features["B"])
                meter.add({"loss": loss, **terms})
                pair_rates.append(rate)
            return {**meter.means(), **prototypes.summary(),
                    "positive_pair_rate": float(np.mean(pair_rates)) if pair_rates else 0.0}

        self.history["cdsm"] = run_epochs(
            stage="cdsm", epochs=cdsm_epochs, work_dir=work_dir,
            stateful={"encoder": self.encoder, "domain_classifier": self.domain_classifier,
                      "optimizer": optimizer, **shared_state},
            train_epoch=cdsm_epoch, stop_after_epoch=self.stop_after.get("cdsm"))

    def _idse_prototype_terms(self, features: dict[str, torch.Tensor], indices: dict[str, torch.Tensor],
                              prototypes: EpochPrototypes) -> dict[str, torch.Tensor]:
        """PNCE (Eq. 7) on P^{X'} with the own (possibly merged) cluster as positive, and SEL."""
        terms = {}
        for d, z in features.items():
            view = prototypes.domains[d]
            terms[f"L_PNCE_{d}"] = self.proto_nce(z, view.training_logits, view.targets(indices[d]))
            if self.options["use_sel"]:
                terms[f"L_SEL_{d}"] = self.sel(z, view.training_logits, view.training_raw)
        return terms

    def _matching_terms(self, features: dict[str, torch.Tensor], indices: dict[str, torch.Tensor],
                        banks: dict[str, MomentumMemoryBank], prototypes: EpochPrototypes
                        ) -> tuple[dict[str, torch.Tensor], float]:
        """SN²M (Eqs. 15–17) of A against B and of B against A, or the NN ablation.

        Returns the loss terms and the fraction of samples whose neighbour became a positive.
        """
        other = {"A": "B", "B": "A"}
        if self.options["matching"] == "nearest_neighbour":
            return ({f"L_NN_{d}": self.neighbour_loss(z, banks[other[d]].entries)
                     for d, z in features.items()}, 0.0)
        terms, pairs = {}, []
        for d, z in features.items():
            view = prototypes.domains[d]
            other_bank = banks[other[d]].entries
            batch_negatives = (other_bank[indices[other[d]].to(other_bank.device)]
                               if self.options["sn2m_negatives"] == "batch" else None)
            result = self.sn2m(z, view.own, view.own_in_other_merged, view.other_merged_raw,
                               other_bank, view.other_merged_logits, batch_negatives)
            terms[f"L_SN2M_{d}"] = result.loss
            pairs.append(result.positive_pair.float().mean().item())
        return terms, float(np.mean(pairs))

    def _grl(self, progress: float) -> float:
        coefficient = self.options["grl_coefficient"]
        if self.options["grl_schedule"] == "dann":
            return coefficient * dann_coefficient(progress)
        return coefficient

    def _frozen_copy(self) -> nn.Module:
        """f'_θ of Eq. 14: gradients off; with 'batch' BatchNorm it normalises like f_θ in
        training (batch statistics) but never moves its running statistics (momentum 0)."""
        frozen = momentum_copy(self.encoder)
        if self.options["frozen_batchnorm"] == "running":
            return frozen.eval()
        for module in frozen.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = 0.0
        return frozen.train()

    # ------------------------------------------------------------------ inference
    def embed(self, domain: DomainData) -> np.ndarray:
        if self.options["embedding"] == "head":
            features = self._embed_head(domain)
        else:
            features = embed_loader(self.encoder.backbone, self._loader(domain), self.device,
                                    normalize=True)
        if self.options["retrieval_space"] == "centered":
            features = center_domain(features)
        return features.astype(np.float32, copy=False)

    def _embed_head(self, domain: DomainData) -> np.ndarray:
        return embed_loader(self.encoder, self._loader(domain), self.device)

    def _loader(self, domain: DomainData) -> torch.utils.data.DataLoader:
        return domain.eval_loader(batch_size=max(self.options["batch_size"], 256),
                                  num_workers=self.num_workers)

    def detect_private(self, query_features: np.ndarray,
                       gallery_features: np.ndarray) -> np.ndarray:
        """App. B.1 (Eqs. 25–27) on the retrieval features; always merges (it is the rule)."""
        with faiss_threads(self.prototypes.threads):
            private, report = detect_private_uem(
                query_features, gallery_features,
                num_clusters=self.options["open_set_num_clusters"], elbow=self.open_set_elbow,
                seed=self.seed, merge_scale=self.options["open_set_merge_scale"],
                merge_threshold=self.options["open_set_merge_threshold"])
        self.open_set_report = report.as_dict()
        return private

    def describe(self) -> dict:
        opt = self.options
        flags = {"num_clusters": "oracle"} if opt["num_clusters"] == "oracle" else {}
        return {
            **describe_encoder(self.encoder, self.backbone_cfg, opt["embedding"]),
            "retrieval_distance": "euclidean on L2-normalised features (ranks like App. B's δ)",
            "retrieval_space": opt["retrieval_space"],
            "options": dict(opt),
            "switches": {key: opt[key] for key in ("merge_prototypes", "use_sel", "use_spr", "matching")},
            "gaps": self._gaps(),
            "flags": flags,
            "seed": self.seed,
            "open_set": self.open_set_report,
            "final_losses": {stage: rows[-1] if rows else None for stage, rows in self.history.items()},
        }

    def _gaps(self) -> dict[str, str]:
        """Every uem.md §8 decision, as recorded in results."""
        opt, elbow = self.options, self.elbow
        return {
            "memory_bank": f"NPID bank, beta={opt['bank_momentum']}, renormalised="
                           f"{opt['renormalize_bank']}, no key encoder (§8.1); updated in both stages (§8.10)",
            "ince_negatives": f"{opt['negatives']} (§8.2: 'bank' = all entries, 'batch' = printed sum)",
            "views": "one augmented view per image per step; the bank takes that feature (§8.3)",
            "features": "L2-normalised head output for f_θ and the banks; retrieval on "
                        + ("the same head output" if opt["embedding"] == "head" else
                           "the L2-normalised backbone (pooled) features") + " (§8.4, §2.3)",
            "prototypes": f"raw K-means centroids for Eq. 9, SEL distances and δ searches; "
                          f"normalised in logits={opt['normalize_logit_prototypes']} (§8.4)",
            "elbow": f"num_clusters={opt['num_clusters']!r}, k in [{elbow.k_min}, {elbow.k_max}] "
                     f"step {elbow.k_step}, criterion {elbow.criterion}, re-estimated every "
                     f"{opt['elbow_every']} epoch(s), K-means {elbow.niter} iterations (§8.5)",
            "cluster_start": f"cluster each epoch once alpha >= {opt['cluster_start_alpha']} in "
                             "IDSE, every CDSM epoch (§8.6, §8.10)",
            "alpha": "Eq. 10 with e = 0-based IDSE epoch, constant within an epoch",
            "pnce_positive": "own cluster's slot in P^{X'} (merged average if merged); the other "
                             "domain's unmerged translated prototypes are negatives (§8.7)",
            "merge": f"Eq. 9 strict '<', {_merge_reading(opt['merge_threshold'])} "
                     f"x {opt['merge_scale']}; merging "
                     f"{'on' if opt['merge_prototypes'] else 'off (IDSE uses own prototypes only)'}",
            "sel_weights": f"detached={opt['sel_detach_weights']} (§8.8)",
            "adversarial": f"gradient reversal, {opt['grl_schedule']} coefficient "
                           f"{opt['grl_coefficient']}, classifier hidden {opt['classifier_hidden']} (§8.9)",
            "frozen_batchnorm": f"{opt['frozen_batchnorm']} statistics in f'_θ",
            "sn2m": "δ searches over own raw prototypes and the other bank; bank entries give "
                    f"the neighbour feature; instance negatives = {opt['sn2m_negatives']} "
                    "(§8.10, §8.11)",
            "wo_sn2m": "cross-domain cosine nearest neighbour in the bank as the only positive (§8.12)",
            "cdsm_objective": "Eq. 18 only (no IPM/SEL in stage 2)",
            "optimizer": f"SGD momentum {opt['momentum']}, weight decay {opt['weight_decay']}, "
                         f"lr {opt['lr']} (IDSE) / {opt['cdsm_lr']} (CDSM) cosine per step, "
                         "restarted for CDSM, classifier in the same optimizer (§8.21)",
            "batch": f"{opt['batch_size']} images per domain per step (§8.20)",
            "test_distance": "euclidean on normalised features (§8.13)",
            "retrieval_space": f"{opt['retrieval_space']} ('centered' = each domain minus its "
                               "own feature mean, re-normalised: Eq. 8's translation at test "
                               "time; §2.3)",
            "clustering_threads": f"faiss OpenMP threads {opt['clustering_threads']} while "
                                  "clustering (speed only; float reduction order aside)",
            "open_set": f"App. B.1 on retrieval features, counts {opt['open_set_num_clusters']!r} "
                        f"(Elbow k in [{self.open_set_elbow.k_min}, {self.open_set_elbow.k_max}] "
                        f"step {self.open_set_elbow.k_step}), Eq. 9 threshold x "
                        f"{opt['open_set_merge_scale']} ({opt['open_set_merge_threshold']}), "
                        "merging always on; query private if its "
                        "nearest prototype is unmerged or min δ > D_c",
        }


def _ablation(name: str, summary: str, **switches: Any) -> type:
    """A registered UEM subclass with ``switches`` fixed (refused as config keys)."""

    def __init__(self, **kwargs: Any) -> None:
        UEM.__init__(self, **kwargs, **switches)

    parameters = [p for p in inspect.signature(UEM.__init__).parameters.values()
                  if p.name not in switches]
    __init__.__signature__ = inspect.Signature(parameters)
    doc = f"{summary}\n\n    Arguments as ``UEM``, without {', '.join(sorted(switches))} (fixed).\n    "
    return type(name, (UEM,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})


UEMWithoutPrototypeMerging = METHODS.register_module(name="uem_wo_pm")(_ablation(
    "UEMWithoutPrototypeMerging", "UEM ablation w/o P.M.: each domain's own prototypes, no "
    "merging (Table 4, Wang et al. 2024).", merge_prototypes=False))
UEMWithoutSEL = METHODS.register_module(name="uem_wo_sel")(_ablation(
    "UEMWithoutSEL", "UEM ablation w/o SEL: no Semantic-Enhanced Loss (Table 4, Wang et al. "
    "2024).", use_sel=False))
UEMWithoutSPDA = METHODS.register_module(name="uem_wo_spda")(_ablation(
    "UEMWithoutSPDA", "UEM ablation w/o SPDA: plain adversarial alignment, no SPR (Table 4, "
    "Wang et al. 2024).", use_spr=False))
UEMWithoutSN2M = METHODS.register_module(name="uem_wo_sn2m")(_ablation(
    "UEMWithoutSN2M", "UEM ablation w/o SN²M: plain cross-domain nearest-neighbour positives "
    "(Table 4, Wang et al. 2024).", matching="nearest_neighbour"))
