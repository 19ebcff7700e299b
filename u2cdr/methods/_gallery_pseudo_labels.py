"""What OVANet, DANCE and UniOT share once adapted to label-free U²CDR: gallery pseudo-classes.

Open-set / universal domain adaptation trains a classifier on a *labelled source* domain and
judges each *unlabelled target* sample known (one of the source classes) or unknown. In U²CDR
neither domain has labels, and the open scenario asks which queries (domain A) have no
counterpart in the gallery (domain B). So the roles are read as:

* source = the gallery B: its classes are the label space a query is searched in;
* target = the query domain A: its samples are judged known (shared) or unknown (private);
* every source-classification term (cross-entropy on source labels) is replaced by a
  pseudo-label substitute: cross-entropy on the **K-means cluster pseudo-labels of the gallery's
  memory bank** (spherical K-means, K = ``num_clusters``).

``GalleryPseudoLabelMethod`` adds this to ``BankMethod`` (InstDisc's encoder, one memory bank per
domain, instance discrimination — a representation learner the pseudo-labels can come from,
since nothing supervises the encoder otherwise):

    start:  K ← num_clusters (an int, 'elbow' on the initial gallery features, or 'oracle');
            build the prototype classifier C (K classes) and the method's own heads.
    fresh:  banks ← initial features;  (P, y_B) ← spherical K-means(M_B, K);  C ← P.
    epoch:  every ``recluster_every`` epochs, y_B ← Lloyd refinement on M_B that starts from
            C's prototypes (so pseudo-class k stays class k of C; ``refine_spherical_centroids``).
    step:   L_CLS_B = CE(C(z_B), y_B[idx_B]) + the instance terms + the method's own terms.

Heads read the L2-normalised head embedding, which is also the retrieval feature, so
``detect_private`` can apply them to the features the harness passes in.

``head_gradient_scale`` (not in the papers; default 1 = faithful) scales the gradient that the
pseudo-label and adaptation terms send into the encoder, while the heads learn at full
strength: from a random initialisation (the digits benchmark) the temperature-0.05 cross-entropy
on the gallery's own clusters otherwise collapses the features onto those clusters and instance
discrimination stops learning (OVANet, 8 digits epochs: both instance losses stayed at chance,
log N, against instdisc's steady fall).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from u2cdr.data.pair import DomainPair
from u2cdr.methods._bank_method import BankMethod, BankSession, instdisc_arguments
from u2cdr.methods.coda import refine_spherical_centroids
from u2cdr.models.cluster_count import resolve_num_clusters
from u2cdr.models.clustering import kmeans
from u2cdr.models.prototype_classifier import PrototypeClassifier
from u2cdr.registry import accepted_parameters

PSEUDO_LABEL_ADAPTATION = (
    "label-free U2CDR: neither domain has labels, so every source-classification term of the "
    "paper is replaced by cross-entropy on K-means cluster pseudo-labels of the gallery domain "
    "B's memory bank (B = the paper's labelled source, whose classes are the searched label "
    "space; the query domain A = the paper's unlabelled target, judged known/unknown)")


class TensorState:
    """Named tensors that must survive a resume: the gallery pseudo-labels (``'gallery'``) and a
    method's other running estimates (UniOT's column mass)."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.tensors)

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.tensors = {name: value.clone() for name, value in state.items()}


def scale_gradient(features: torch.Tensor, scale: float) -> torch.Tensor:
    """``features`` unchanged in the forward pass, their gradient multiplied by ``scale``."""
    if scale == 1.0:
        return features
    detached = features.detach()
    return detached + scale * (features - detached)


def pseudo_label_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The ``GalleryPseudoLabelMethod`` keywords out of a subclass constructor's ``locals()``."""
    accepted = accepted_parameters(GalleryPseudoLabelMethod) or []
    return {name: arguments[name] for name in accepted if name in arguments}


class GalleryPseudoLabelMethod(BankMethod):
    """BankMethod + a prototype classifier trained on gallery K-means pseudo-labels (not registered).

    Subclasses implement ``build_method_heads(num_classes)`` (their own modules, sized by K),
    ``method_terms`` (their loss terms for one step) and ``detect_private``.
    """

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 50,
                 batch_size: int = 36, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 5e-4, temperature: float = 0.07, bank_momentum: float = 0.99,
                 renormalize_bank: bool = True, negatives: str = "bank",
                 instance_weight: float = 1.0, num_clusters: str | int = "elbow",
                 elbow_k_max: int | None = 30, kmeans_iterations: int = 20,
                 recluster_every: int = 1, classifier_temperature: float = 0.05,
                 source_weight: float = 1.0, head_lr_scale: float = 1.0,
                 head_gradient_scale: float = 1.0, device: str = "cpu",
                 num_workers: int = 0) -> None:
        super().__init__(**instdisc_arguments(locals()))
        if isinstance(num_clusters, str) and num_clusters not in ("oracle", "elbow"):
            raise ValueError(f"num_clusters={num_clusters!r} is unknown; valid: 'oracle', 'elbow' "
                             "or an integer >= 2")
        if not isinstance(num_clusters, str) and (isinstance(num_clusters, bool)
                                                  or int(num_clusters) < 2):
            raise ValueError(f"num_clusters must be 'oracle', 'elbow' or an integer >= 2, got "
                             f"{num_clusters!r}")
        if recluster_every < 0 or kmeans_iterations < 1:
            raise ValueError(f"recluster_every must be >= 0 and kmeans_iterations >= 1, got "
                             f"{recluster_every} and {kmeans_iterations}")
        negative = [name for name, value in (("instance_weight", instance_weight),
                                             ("source_weight", source_weight)) if value < 0]
        if negative or head_lr_scale <= 0:
            raise ValueError(f"{', '.join(negative) or 'head_lr_scale'} out of range: weights must "
                             "be >= 0 and head_lr_scale > 0")
        if not 0 <= head_gradient_scale <= 1:
            raise ValueError(f"head_gradient_scale must lie in [0, 1], got {head_gradient_scale}")
        self.instance_weight = instance_weight
        self.num_clusters = num_clusters
        self.elbow_k_max = elbow_k_max
        self.kmeans_iterations = kmeans_iterations
        self.recluster_every = recluster_every
        self.classifier_temperature = classifier_temperature
        self.source_weight = source_weight
        self.head_lr_scale = head_lr_scale
        self.head_gradient_scale = head_gradient_scale
        self.classifier: PrototypeClassifier | None = None
        self.estimates = TensorState()
        self._initial_gallery: np.ndarray | None = None

    # ----- the shared parts ---------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        if self.classifier is None:
            raise RuntimeError(f"{type(self).__name__} has no classifier yet; fit it (or call "
                               "build_heads) first")
        return self.classifier.num_classes

    def build_heads(self, num_classes: int) -> None:
        """The K-way prototype classifier C and the method's own heads."""
        self.classifier = PrototypeClassifier(self.encoder.out_dim, num_classes,
                                              self.classifier_temperature).to(self.device)
        self.build_method_heads(num_classes)

    def head_modules(self) -> dict[str, nn.Module]:
        """Every module besides the encoder that trains and is checkpointed, by name."""
        return {"classifier": self.classifier}

    def start_session(self, pair: DomainPair) -> BankSession:
        """Fix K on the initial gallery features and size the heads, then the usual session."""
        if isinstance(self.num_clusters, str):
            # The initial model is the one a resumed run starts from too, so K is the same.
            gallery = self._embed_head(pair.gallery)
            labels = pair.gallery.labels if self.num_clusters == "oracle" else None
            count = resolve_num_clusters(self.num_clusters, gallery, labels,
                                         seed=self._kmeans_seed(0), k_max=self.elbow_k_max)
            self._initial_gallery = gallery
        else:
            count = min(int(self.num_clusters), len(pair.gallery))
        self.build_heads(count)
        return super().start_session(pair)

    def initialize_session(self, session: BankSession) -> None:
        """Fill the banks with the initial model's features (reusing the gallery's from the start)."""
        gallery = self._initial_gallery
        if gallery is None:
            gallery = self._embed_head(session.pair.gallery)
        session.banks["A"].initialize(torch.from_numpy(self._embed_head(session.pair.query)))
        session.banks["B"].initialize(torch.from_numpy(gallery))
        self._initial_gallery = None
        self.on_fresh_start(session)

    def on_fresh_start(self, session: BankSession) -> None:
        """Spherical K-means of the gallery bank: C's prototypes and the first pseudo-labels."""
        bank = session.banks["B"].entries
        centroids, assignments, _ = kmeans(bank.cpu().numpy(), self.num_classes,
                                           seed=self._kmeans_seed(0), niter=self.kmeans_iterations,
                                           spherical=True)
        self.classifier.set_prototypes(torch.from_numpy(centroids))
        self.estimates.tensors["gallery"] = torch.from_numpy(assignments).to(bank.device)

    def on_epoch_start(self, session: BankSession, epoch: int) -> None:
        """Refresh the pseudo-labels from C's prototypes every ``recluster_every`` epochs."""
        if self.recluster_every and epoch > 0 and epoch % self.recluster_every == 0:
            bank = session.banks["B"].entries
            centroids = refine_spherical_centroids(bank, self.classifier.prototypes().detach(),
                                                   self.kmeans_iterations)
            self.estimates.tensors["gallery"] = (bank @ centroids.t()).argmax(dim=1)

    def _kmeans_seed(self, epoch: int) -> int:
        return (torch.initial_seed() + 1000 * epoch) % (2**31 - 1)

    def gallery_targets(self, idx_b: torch.Tensor) -> torch.Tensor:
        """``[B]`` pseudo-labels of the gallery images ``idx_b``."""
        return self.estimates.tensors["gallery"][idx_b.to(self.device)]

    # ----- BankMethod hooks ---------------------------------------------------------------
    @property
    def loss_weights(self) -> dict[str, float]:
        return {**super().loss_weights, "L_CLS_B": self.source_weight, **self.method_weights()}

    def parameter_groups(self) -> list[dict[str, Any]]:
        heads = [p for module in self.head_modules().values() for p in module.parameters()]
        return [*super().parameter_groups(), {"params": heads, "lr_scale": self.head_lr_scale}]

    def extra_state(self) -> dict[str, Any]:
        return {**self.head_modules(), "estimates": self.estimates}

    def extra_terms(self, session: BankSession, z_a: torch.Tensor, idx_a: torch.Tensor,
                    z_b: torch.Tensor, idx_b: torch.Tensor) -> dict[str, torch.Tensor]:
        z_a = scale_gradient(z_a, self.head_gradient_scale)
        z_b = scale_gradient(z_b, self.head_gradient_scale)
        logits_b = self.classifier(z_b)
        terms = {"L_CLS_B": F.cross_entropy(logits_b, self.gallery_targets(idx_b))}
        terms.update(self.method_terms(session, z_a, idx_a, z_b, idx_b, logits_b))
        return terms

    # ----- what a subclass supplies -------------------------------------------------------
    def build_method_heads(self, num_classes: int) -> None:
        """Create the method's own modules for K = ``num_classes`` gallery pseudo-classes."""

    def method_weights(self) -> dict[str, float]:
        """Weights of the method's own loss terms."""
        return {}

    def method_terms(self, session: BankSession, z_a: torch.Tensor, idx_a: torch.Tensor,
                     z_b: torch.Tensor, idx_b: torch.Tensor,
                     logits_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """The method's own named loss terms for one step (``logits_b`` = C(z_B))."""
        return {}

    # ----- helpers for detection and description ------------------------------------------
    def query_tensor(self, features: np.ndarray) -> torch.Tensor:
        """Harness features ``[N, D]`` as a float32 tensor on the method's device."""
        array = np.asarray(features, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self.encoder.out_dim:
            raise ValueError(f"features must be [N, {self.encoder.out_dim}] head embeddings, got "
                             f"shape {array.shape}")
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def describe(self) -> dict:
        info = super().describe()
        info["adaptation"] = PSEUDO_LABEL_ADAPTATION
        info["num_classes"] = self.classifier.num_classes if self.classifier is not None else None
        info["gap_decisions"].update({
            "pseudo_labels": ("spherical K-means of the gallery bank at the fresh start (classifier "
                              "prototypes start at its centroids); "
                              + (f"every {self.recluster_every} epoch(s) re-assigned by Lloyd "
                                 "refinement started from the classifier's prototypes"
                                 if self.recluster_every else "never re-assigned")),
            "num_clusters": (f"{self.num_clusters}" + (f" (Elbow k <= {self.elbow_k_max}, on the "
                                                       "initial gallery features)"
                                                       if self.num_clusters == "elbow" else "")),
            "instance_discrimination": (f"weight {self.instance_weight}: per-domain InstDisc "
                                        "(not in the paper) trains the encoder the pseudo-labels "
                                        "come from"),
            "classifier": (f"prototype (cosine) classifier, T={self.classifier_temperature}, on "
                           "the L2-normalised head embedding (= the retrieval feature)"),
            "head_gradient_scale": (f"{self.head_gradient_scale}: the encoder receives this "
                                    "fraction of the gradient of every pseudo-label and adaptation "
                                    "term (1 = the paper; the heads always learn at full strength)"),
        })
        info["flags"] = {"num_clusters": "oracle"} if self.num_clusters == "oracle" else {}
        if self.head_gradient_scale != 1.0:
            info["flags"]["head_gradient_scale"] = self.head_gradient_scale
        return info

