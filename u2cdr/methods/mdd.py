"""MDD, margin disparity discrepancy (Zhang et al., "Bridging Theory and Algorithm for Domain
Adaptation", ICML 2019), label-free.

MDD bounds the target error by the source error plus a margin-based disparity between a main
classifier f and an adversarial classifier f' on the two domains. f is trained on labelled
source data; f' is trained to agree with f on the source and to disagree with it on the target
(maximising D_γ, ``u2cdr.losses.margin_disparity``), and the features are trained, through
gradient reversal in front of f', to make that impossible.

Adaptation to U²CDR (neither domain has labels):
    * the source-classification loss gets K-means pseudo-labels: the query domain plays the
      source, its memory bank is clustered with spherical K-means (faiss) before every epoch
      (``centroids_from='query'``; 'both' clusters both banks together) and each query image's
      label is its bank entry's nearest centroid; K from ``num_clusters`` ('elbow' on the
      initial features, an int, or 'oracle'), fixed for the run — the cluster machinery is
      CDAN's (``cdan.py``);
    * per-domain instance discrimination against momentum memory banks (UEM Eqs. 5–6) runs on
      both domains, as in ``dann``, so the features keep instance-level structure the pseudo
      labels do not give;
    * the gallery domain is MDD's target.

Algorithm (reads top to bottom like ``fit``):
    1. M_A, M_B ← normalised head features of the initial model; K ← num_clusters on them;
       f, f' ← two-layer classifiers over the K pseudo-classes.
    2. for each epoch: C ← spherical K-means(M_A, K), its rows Hungarian-matched to last
           epoch's so a pseudo-class keeps its number;  y_A ← argmax M_A·Cᵀ
           for each paired batch, p = step / total steps:
               z_A, z_B = f_θ(x_A), f_θ(x_B);  h_A, h_B = argmax f(z_A), argmax f(z_B)
               λ = adversarial_weight · (2/(1 + exp(−γ_λ p)) − 1)
               L = INCE(z_A, M_A) + INCE(z_B, M_B) + w_cls · CE(f(z_A), y_A)
                   + γ · CE(f'(GRL_λ(z_A)), h_A) − log(1 − σ_{h_B}(f'(GRL_λ(z_B))))
               SGD step (f, f' at classifier_lr_scale × the encoder's rate); M ← β M + (1 − β) z
    3. retrieval features = normalised head output of the eval view; private queries by the
       generic App. B.2 rule (MDD has no unknown class).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from u2cdr.data.pair import DomainPair
from u2cdr.losses.margin_disparity import margin_disparity_loss
from u2cdr.methods._bank_method import BankSession
from u2cdr.methods.cdan import CDAN
from u2cdr.methods.dann import DANN
from u2cdr.models.grl import grad_reverse
from u2cdr.models.prototypes import match_prototypes
from u2cdr.registry import METHODS

ADAPTATION = ("label-free: MDD's source-classification loss is trained on pseudo-labels, the "
              "nearest spherical K-means centroid of each query image's memory-bank entry "
              "(re-clustered every epoch; the query domain is the source, the gallery the "
              "target), and per-domain instance discrimination (InstanceNCE against momentum "
              "memory banks, UEM Eqs. 5-6) runs on both domains; the margin disparity "
              "discrepancy between f and the adversarial f' is MDD's, through gradient reversal")


class LabelAnchor:
    """Last epoch's centroids, so a re-clustering keeps each pseudo-class's number.

    K-means numbers its clusters arbitrarily on every run; f's targets would be permuted each
    epoch and f could not learn them. New centroids are matched one-to-one to the previous
    ones (Hungarian, scipy) and renumbered. Checkpointed, so a resumed run numbers as a
    straight one does.
    """

    def __init__(self) -> None:
        self.centroids: torch.Tensor | None = None

    def align(self, centroids: torch.Tensor) -> torch.Tensor:
        """``centroids`` reordered so row i is the one nearest last epoch's row i."""
        if self.centroids is not None:
            _, order, _ = match_prototypes(self.centroids.numpy(), centroids.cpu().numpy())
            centroids = centroids[torch.from_numpy(order).to(centroids.device)]
        self.centroids = centroids.detach().cpu().clone()
        return centroids

    def state_dict(self) -> dict[str, torch.Tensor | None]:
        return {"centroids": self.centroids}

    def load_state_dict(self, state: dict[str, torch.Tensor | None]) -> None:
        self.centroids = state["centroids"]


def two_layer_classifier(in_dim: int, hidden: int, num_classes: int) -> nn.Sequential:
    """Linear–ReLU–Linear over ``num_classes`` (MDD's heads are two layers wide)."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, num_classes))


@METHODS.register_module(name="mdd")
class MDD(CDAN):
    """MDD over per-domain InstDisc with a pseudo-labelled source (Zhang et al., ICML 2019).

    Instance-discrimination defaults are InstDisc's; the adversarial ones MDD's: the reversal
    ramps up to 0.1 (the released MDD code's warm-start reversal layer tops out at 0.1), the
    heads learn at 10× the encoder's rate. ``benchmarks/_base_/methods/mdd.py`` holds the
    paper-scale settings.

    Args (beyond ``dann``'s, whose ``discriminator_*`` options are named ``classifier_*`` here):
        margin: γ, the weight of source agreement in D_γ (MDD tunes it per task).
        classifier_weight: weight of the pseudo-label classification loss.
        classifier_hidden: hidden width of f and f'.
        classifier_lr_scale: learning rate of f and f' relative to ``lr``.
        num_clusters: K, the number of pseudo-classes: 'elbow', an int, or 'oracle' (the
            number of classes — label knowledge, recorded in ``flags``).
        elbow_k_max: largest K the Elbow search tries (None: the estimator's default).
        kmeans_iterations: Lloyd iterations per clustering.
        centroids_from: 'query' (cluster M_A, the source) or 'both' (M_A ∪ M_B).
    """

    stage: ClassVar[str] = "mdd"
    adaptation: ClassVar[str] = ADAPTATION

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 200,
                 batch_size: int = 64, lr: float = 0.03, momentum: float = 0.9,
                 weight_decay: float = 5e-4, temperature: float = 0.07, bank_momentum: float = 0.99,
                 renormalize_bank: bool = True, negatives: str = "bank",
                 adversarial_weight: float = 0.1, grl_schedule: str = "dann",
                 grl_gamma: float = 10.0, margin: float = 4.0, classifier_weight: float = 1.0,
                 classifier_hidden: int = 1024, classifier_lr_scale: float = 10.0,
                 num_clusters: str | int = "elbow", elbow_k_max: int | None = None,
                 kmeans_iterations: int = 20, centroids_from: str = "query",
                 embedding: str = "head", device: str = "cpu", num_workers: int = 0) -> None:
        if margin <= 0 or classifier_weight < 0:
            raise ValueError(f"need margin > 0 and classifier_weight >= 0; got {margin}, "
                             f"{classifier_weight}")
        super().__init__(backbone=backbone, head=head, low_dim=low_dim, epochs=epochs,
                         batch_size=batch_size, lr=lr, momentum=momentum,
                         weight_decay=weight_decay, temperature=temperature,
                         bank_momentum=bank_momentum, renormalize_bank=renormalize_bank,
                         negatives=negatives, adversarial_weight=adversarial_weight,
                         grl_schedule=grl_schedule, grl_gamma=grl_gamma,
                         discriminator_hidden=classifier_hidden,
                         discriminator_lr_scale=classifier_lr_scale, num_clusters=num_clusters,
                         elbow_k_max=elbow_k_max, kmeans_iterations=kmeans_iterations,
                         centroids_from=centroids_from, embedding=embedding, device=device,
                         num_workers=num_workers)
        self.margin = margin
        self.classifier_weight = classifier_weight
        self.classifier: nn.Sequential | None = None
        self.adversary: nn.Sequential | None = None
        self.source_labels: torch.Tensor | None = None  # [N_A] pseudo-label of every query image
        self.label_anchor = LabelAnchor()

    # ----- fit -----------------------------------------------------------------------------
    def prepare_discriminator(self, pair: DomainPair, work_dir: Path) -> None:
        """Resolve K, then build f and f' over the K pseudo-classes (before the optimiser)."""
        self.cluster_count.value = self._resolve_cluster_count(pair, work_dir)
        width, classes = self.encoder.out_dim, self.cluster_count.value
        hidden = self.discriminator_hidden
        self.classifier = two_layer_classifier(width, hidden, classes).to(self.device)
        self.adversary = two_layer_classifier(width, hidden, classes).to(self.device)

    # ----- BankMethod hooks -----------------------------------------------------------------
    @property
    def loss_weights(self) -> dict[str, float]:
        """L_MDD has weight 1: λ acts inside the reversal, on the encoder's gradient only."""
        return {"L_INCE_A": self.instance_weight, "L_INCE_B": self.instance_weight,
                "L_CLS": self.classifier_weight, "L_MDD": 1.0}

    def parameter_groups(self) -> list[dict[str, Any]]:
        if self.classifier is None or self.adversary is None:
            raise RuntimeError("f and f' must exist before the optimiser is built")
        return [{"params": list(self.encoder.parameters()), "lr_scale": 1.0},
                {"params": [*self.classifier.parameters(), *self.adversary.parameters()],
                 "lr_scale": self.discriminator_lr_scale}]

    def extra_state(self) -> dict[str, Any]:
        return {"classifier": self.classifier, "adversary": self.adversary,
                "cluster_count": self.cluster_count, "label_anchor": self.label_anchor}

    def on_epoch_start(self, session: BankSession, epoch: int) -> None:
        """Re-cluster (CDAN's hook), then label each query image by its entry's nearest centroid."""
        super().on_epoch_start(session, epoch)
        self.centroids = self.label_anchor.align(self.centroids)
        self.source_labels = (session.banks["A"].entries.detach() @ self.centroids.t()).argmax(1)

    def extra_terms(self, session: BankSession, z_a: torch.Tensor, idx_a: torch.Tensor,
                    z_b: torch.Tensor, idx_b: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.source_labels is None:
            raise RuntimeError("MDD has no pseudo-labels yet; on_epoch_start runs before a step")
        logits_a = self.classifier(z_a)
        labels = self.source_labels[idx_a.to(self.source_labels.device)]
        return {"L_CLS": F.cross_entropy(logits_a, labels),
                "L_MDD": self.disparity_loss(z_a, z_b, logits_a.detach().argmax(1),
                                             self.classifier(z_b).detach().argmax(1),
                                             self.grl_coefficient())}

    def disparity_loss(self, z_a: torch.Tensor, z_b: torch.Tensor, predicted_a: torch.Tensor,
                       predicted_b: torch.Tensor, coefficient: float) -> torch.Tensor:
        """−D_γ of f' on GRL_λ(z): f' minimises it; the encoder gets −λ times its gradient."""
        return margin_disparity_loss(self.adversary(grad_reverse(z_a, coefficient)),
                                     self.adversary(grad_reverse(z_b, coefficient)),
                                     predicted_a, predicted_b, self.margin)

    def describe(self) -> dict:
        info = DANN.describe(self)
        source = "the query bank" if self.centroids_from == "query" else "the two banks together"
        info["num_clusters_used"] = self.cluster_count.value
        info["gap_decisions"].update({
            "discriminator_input": "normalised head output z for f and f' (the bottleneck "
                                   "analogue; retrieved)",
            "pseudo_labels": f"nearest spherical faiss K-means centroid of each query image's "
                             f"bank entry, K-means of {source} before every epoch, clusters "
                             "renumbered by Hungarian matching to the previous epoch's",
            "disparity": f"-D_gamma = {self.margin} * CE(f'(s), h_f(s)) - log(1 - "
                         "softmax(f'(t))[h_f(t)]) (MDD's modified target loss), h_f = argmax f",
            "discriminator": f"f and f': Linear-ReLU-Linear, hidden {self.discriminator_hidden}, "
                             f"lr x {self.discriminator_lr_scale}",
        })
        info["flags"] = {"num_clusters": self.num_clusters}
        return info
