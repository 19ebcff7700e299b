"""DANN, domain-adversarial training (Ganin & Lempitsky, ICML 2015; Ganin et al., JMLR 2016), label-free.

DANN trains a feature extractor G_f so that a label predictor G_y classifies the labelled
source domain while a domain classifier G_d, behind a gradient-reversal layer, cannot tell
source from target features: min over G_f, G_y and max over G_d of L_y − λ L_d (JMLR Eq. 18).

Adaptation to U²CDR (neither domain has labels): the source-classification term L_y is
replaced by a self-supervised substitute, per-domain instance discrimination against momentum
memory banks (NPID / UEM Eqs. 5–6, exactly ``instdisc``), run on *both* domains since neither
is privileged. The domain-adversarial part is DANN's: the shared two-layer ``DomainClassifier``
on the features, gradient reversal with DANN's ramp λ_p = 2/(1 + exp(−γp)) − 1 (γ = 10). So
the row measures what adversarial alignment adds to instance discrimination.

Algorithm (reads top to bottom like ``fit``; the loop is ``BankMethod``'s):
    1. M_A, M_B ← normalised head features of every image under the initial model.
    2. for each paired batch, p = step / total steps:
           z_A, z_B = f_θ(x_A), f_θ(x_B)                      (normalised head output)
           λ = adversarial_weight · (2 / (1 + exp(−γ p)) − 1)
           L = INCE(z_A, M_A) + INCE(z_B, M_B) + BCE(G_d(GRL_λ([z_A; z_B])), [1; 0])
           SGD step (G_d at discriminator_lr_scale × the encoder's rate);  M ← β M + (1 − β) z
    3. retrieval features = normalised head output of the eval view.

Readings:
    * G_d sees the projection head's output z, our analogue of DANN/CDAN's bottleneck layer
      and the feature that is retrieved.
    * λ multiplies only the gradient reaching the encoder (GRL); G_d always learns at full
      strength, as in DANN.
    * Learning rate: DANN anneals η_p = η_0 / (1 + 10p)^0.75; here cosine to zero per step
      like every bank method (``BankMethod``), G_d's group scaled by ``discriminator_lr_scale``
      (10 in the released DANN/CDAN code, "new layers at 10×").
    * G_d: the shared two-layer classifier (Linear–ReLU–Linear); DANN's own has two hidden
      layers of 1024 with dropout. ``discriminator_hidden`` sets the width.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

import torch

from u2cdr.losses.adversarial import domain_adversarial_loss
from u2cdr.methods._bank_method import BankMethod, BankSession, instdisc_arguments
from u2cdr.models.domain_classifier import DomainClassifier
from u2cdr.models.grl import dann_coefficient
from u2cdr.registry import METHODS, accepted_parameters

GRL_SCHEDULES = ("dann", "constant")

ADAPTATION = ("label-free: DANN's source-classification loss is replaced by per-domain instance "
              "discrimination (InstanceNCE against momentum memory banks, UEM Eqs. 5-6) on both "
              "domains; the domain-adversarial loss (gradient reversal, DANN ramp) is unchanged")


def dann_arguments(cls: type, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords ``cls``'s constructor accepts, out of a subclass constructor's ``locals()``."""
    return {name: arguments[name] for name in accepted_parameters(cls) or [] if name in arguments}


@METHODS.register_module(name="dann")
class DANN(BankMethod):
    """DANN: gradient-reversal domain alignment over per-domain InstDisc (Ganin et al., JMLR 2016).

    Instance-discrimination defaults are InstDisc's (NPID from random initialisation); the
    adversarial ones are DANN's (λ ramp with γ 10 up to 1, a 1024-wide discriminator learning
    at 10× the encoder's rate). ``benchmarks/_base_/methods/dann.py`` holds the paper-scale
    settings.

    Args:
        backbone: backbone config, e.g. ``dict(type='resnet50', checkpoint=...)``.
        head: projection head kind ('mlp', 'linear', 'none').
        low_dim: projection width.
        epochs: training epochs; an epoch covers the larger domain once.
        batch_size: images per domain per step.
        lr: initial learning rate of the encoder, cosine-annealed to zero.
        momentum: SGD momentum.
        weight_decay: SGD weight decay (encoder and discriminator).
        temperature: τ of instance discrimination.
        bank_momentum: β of the memory-bank update.
        renormalize_bank: L2-normalise bank entries after each update.
        negatives: instance-discrimination negatives, 'bank' or 'batch'.
        adversarial_weight: the largest gradient-reversal coefficient λ (DANN: 1).
        grl_schedule: 'dann' (λ ramps from 0 with 2/(1+exp(−γp))−1) or 'constant'.
        grl_gamma: γ of the ramp (DANN: 10).
        discriminator_hidden: hidden width of the domain classifier.
        discriminator_lr_scale: the domain classifier's learning rate relative to ``lr``.
        embedding: retrieval features, 'head' or 'backbone'.
        device: 'cpu' or 'cuda'.
        num_workers: data-loader worker processes.
    """

    family: ClassVar[str] = "domain adaptation"
    stage: ClassVar[str] = "dann"
    adaptation: ClassVar[str] = ADAPTATION

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 200,
                 batch_size: int = 64, lr: float = 0.03, momentum: float = 0.9,
                 weight_decay: float = 5e-4, temperature: float = 0.07, bank_momentum: float = 0.99,
                 renormalize_bank: bool = True, negatives: str = "bank",
                 adversarial_weight: float = 1.0, grl_schedule: str = "dann",
                 grl_gamma: float = 10.0, discriminator_hidden: int = 1024,
                 discriminator_lr_scale: float = 10.0, embedding: str = "head",
                 device: str = "cpu", num_workers: int = 0) -> None:
        super().__init__(**instdisc_arguments(locals()))
        if grl_schedule not in GRL_SCHEDULES:
            raise ValueError(f"grl_schedule={grl_schedule!r} is unknown; valid: {', '.join(GRL_SCHEDULES)}")
        if adversarial_weight < 0 or grl_gamma <= 0 or discriminator_lr_scale <= 0:
            raise ValueError(f"need adversarial_weight >= 0, grl_gamma > 0 and "
                             f"discriminator_lr_scale > 0; got {adversarial_weight}, {grl_gamma}, "
                             f"{discriminator_lr_scale}")
        self.adversarial_weight = adversarial_weight
        self.grl_schedule = grl_schedule
        self.grl_gamma = grl_gamma
        self.discriminator_hidden = discriminator_hidden
        self.discriminator_lr_scale = discriminator_lr_scale
        self.domain_classifier: DomainClassifier | None = self.build_domain_classifier()
        self.progress = 0.0  # fraction of the schedule done; set before every step

    def build_domain_classifier(self) -> DomainClassifier | None:
        """G_d on the head features (CDAN builds its own once the cluster count is known)."""
        return DomainClassifier(self.encoder.out_dim, self.discriminator_hidden).to(self.device)

    def grl_coefficient(self) -> float:
        """λ at the current ``progress``: DANN's ramp or a constant, times ``adversarial_weight``."""
        if self.grl_schedule == "dann":
            return self.adversarial_weight * dann_coefficient(self.progress, self.grl_gamma)
        return self.adversarial_weight

    # ----- BankMethod hooks -----------------------------------------------------------------
    @property
    def loss_weights(self) -> dict[str, float]:
        """L_DAL enters with weight 1: λ acts inside the reversal, on the encoder's gradient only."""
        return {**super().loss_weights, "L_DAL": 1.0}

    def parameter_groups(self) -> list[dict[str, Any]]:
        if self.domain_classifier is None:
            raise RuntimeError("the domain classifier must exist before the optimiser is built")
        return [{"params": list(self.encoder.parameters()), "lr_scale": 1.0},
                {"params": list(self.domain_classifier.parameters()),
                 "lr_scale": self.discriminator_lr_scale}]

    def extra_state(self) -> dict[str, torch.nn.Module]:
        return {"domain_classifier": self.domain_classifier}

    def train_step(self, session: BankSession, x_a: torch.Tensor, idx_a: torch.Tensor,
                   x_b: torch.Tensor, idx_b: torch.Tensor, *, epoch: int,
                   step: int) -> dict[str, torch.Tensor]:
        self.progress = (epoch * session.steps_per_epoch + step) / session.total_steps
        return super().train_step(session, x_a, idx_a, x_b, idx_b, epoch=epoch, step=step)

    def extra_terms(self, session: BankSession, z_a: torch.Tensor, idx_a: torch.Tensor,
                    z_b: torch.Tensor, idx_b: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"L_DAL": self.adversarial_loss(z_a, z_b, self.grl_coefficient())}

    def adversarial_loss(self, z_a: torch.Tensor, z_b: torch.Tensor,
                         coefficient: float) -> torch.Tensor:
        """DANN's L_d: BCE of G_d on A (1) and B (0) features through GRL_λ (JMLR Eq. 18)."""
        return domain_adversarial_loss(self.domain_classifier, z_a, z_b, coefficient)

    def describe(self) -> dict:
        info = super().describe()
        info["adaptation"] = self.adaptation
        info["gap_decisions"].update({
            "discriminator_input": "normalised head output z (the bottleneck analogue; retrieved)",
            "grl": (f"lambda = {self.adversarial_weight} * (2/(1+exp(-{self.grl_gamma} p)) - 1), "
                    "p = step / total steps" if self.grl_schedule == "dann"
                    else f"constant lambda = {self.adversarial_weight}"),
            "discriminator": f"Linear-ReLU-Linear, hidden {self.discriminator_hidden}, lr x "
                             f"{self.discriminator_lr_scale}",
            "lr_schedule": "cosine to zero per step (DANN: (1 + 10p)^-0.75 annealing)",
        })
        return info
