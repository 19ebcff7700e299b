"""The loop CDS, PCS and CoDA share: InstDisc's encoder and per-domain memory banks, plus hooks.

All three baselines train one encoder on paired batches against one momentum memory bank per
domain (NPID-style, UEM Eq. 5) and differ only in the loss terms they add and in what they
cluster between epochs. ``BankMethod`` inherits InstDisc's encoder, banks, embedding and
description and owns the one training loop; a method supplies

    extra_terms(session, z_a, idx_a, z_b, idx_b)  its named loss terms for one step;
    loss_weights                                  the weight of every term (default 1);
    on_fresh_start(session)                       after the banks' first fill (CoDA: K-means
                                                  initialisation of its classifiers);
    on_epoch_start(session, epoch)                before each epoch (PCS: re-clustering);
    parameter_groups()                            SGD parameter groups (default: the whole
                                                  encoder), each with a learning-rate scale;
    extra_state()                                 further objects saved in every checkpoint.

Per step (reads like ``train_step``):
    z_A, z_B = f_θ(x_A), f_θ(x_B)
    terms = {L_INCE_A, L_INCE_B if instance_weight > 0} ∪ extra_terms(...)
    L = Σ loss_weights[name] · term;  SGD step (cosine lr × each group's lr_scale)
    M_A ← β M_A + (1 − β) z_A;  M_B likewise  (Eq. 5)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from u2cdr.data.pair import DomainPair
from u2cdr.methods._trainer import (GeneratorState, LossMeter, Stateful, check_finite, cosine_lr,
                                    make_sgd, progress_bar, run_epochs)
from u2cdr.methods.instdisc import InstDisc
from u2cdr.models.memory_bank import MomentumMemoryBank
from u2cdr.registry import accepted_parameters

DOMAINS = ("A", "B")


def instdisc_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The InstDisc constructor's keywords out of a subclass constructor's ``locals()``.

    Subclasses list every option explicitly (configs are checked against the signature) and
    hand the shared ones on with ``super().__init__(**instdisc_arguments(locals()))``; an
    option a subclass does not offer (CoDA has no instance temperature) keeps InstDisc's default.
    """
    return {name: arguments[name] for name in accepted_parameters(InstDisc) or [] if name in arguments}


@dataclass
class BankSession:
    """Everything one ``fit`` trains with, so hooks and tests can reach it.

    Attributes:
        pair: the cell's domains (A = query, B = gallery).
        banks: ``{'A': M_A, 'B': M_B}``.
        optimizer: SGD over the encoder and every extra parameter group.
        generator: the sampler's random generator (checkpointed).
        steps_per_epoch: paired batches per epoch.
        total_steps: steps of the whole schedule (for the cosine learning rate).
    """

    pair: DomainPair
    banks: dict[str, MomentumMemoryBank]
    optimizer: torch.optim.SGD
    generator: torch.Generator
    steps_per_epoch: int
    total_steps: int


class BankMethod(InstDisc):
    """InstDisc with hooks for extra loss terms, extra modules and per-epoch clustering.

    Not registered itself. Subclasses pass InstDisc's options on with ``instdisc_arguments``
    and may set ``instance_weight`` (0 switches instance discrimination off, as in CoDA).
    """

    instance_weight: float = 1.0

    @property
    def loss_weights(self) -> dict[str, float]:
        """Weight of each named term in the total loss; a term not listed has weight 1."""
        return {"L_INCE_A": self.instance_weight, "L_INCE_B": self.instance_weight}

    # ----- hooks -------------------------------------------------------------------------
    def extra_terms(self, session: BankSession, z_a: torch.Tensor, idx_a: torch.Tensor,
                    z_b: torch.Tensor, idx_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """The method's own loss terms for one step (unweighted), by name."""
        return {}

    def on_fresh_start(self, session: BankSession) -> None:
        """Runs once after the banks' first fill; not on a resumed run (state is restored)."""

    def on_epoch_start(self, session: BankSession, epoch: int) -> None:
        """Runs before every epoch, including the first epoch of a resumed run."""

    def parameter_groups(self) -> list[dict[str, Any]]:
        """SGD parameter groups: ``params``, ``lr_scale`` and optionally ``weight_decay``.

        The default trains the whole encoder at the base rate; a method adds its own modules
        (CoDA's classifiers) or splits the encoder (PCS's slower backbone).
        """
        return [{"params": list(self.encoder.parameters()), "lr_scale": 1.0}]

    def extra_state(self) -> dict[str, Stateful]:
        """Objects to checkpoint with the encoder, optimiser, banks and sampler."""
        return {}

    # ----- the loop ----------------------------------------------------------------------
    def start_session(self, pair: DomainPair) -> BankSession:
        """Banks (still empty), optimiser and sampler for training on ``pair``."""
        banks = {domain: MomentumMemoryBank(len(data), self.encoder.out_dim, self.bank_momentum,
                                            self.renormalize_bank).to(self.device)
                 for domain, data in zip(DOMAINS, (pair.query, pair.gallery))}
        optimizer = make_sgd(self.parameter_groups(), self.lr, self.momentum, self.weight_decay)
        steps_per_epoch = pair.steps_per_epoch(self.batch_size)
        return BankSession(pair=pair, banks=banks, optimizer=optimizer,
                           generator=torch.Generator().manual_seed(torch.initial_seed()),
                           steps_per_epoch=steps_per_epoch,
                           total_steps=self.epochs * steps_per_epoch)

    def initialize_session(self, session: BankSession) -> None:
        """Fill the banks with the initial model's features (Eq. 5 init), then ``on_fresh_start``."""
        session.banks["A"].initialize(torch.from_numpy(self._embed_head(session.pair.query)))
        session.banks["B"].initialize(torch.from_numpy(self._embed_head(session.pair.gallery)))
        self.on_fresh_start(session)

    def loss_terms(self, session: BankSession, x_a: torch.Tensor, idx_a: torch.Tensor,
                   x_b: torch.Tensor, idx_b: torch.Tensor
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Named, unweighted loss terms of one paired batch, and the features ``z_A``, ``z_B``."""
        z_a = self.encoder(x_a.to(self.device, non_blocking=True))
        z_b = self.encoder(x_b.to(self.device, non_blocking=True))
        terms: dict[str, torch.Tensor] = {}
        if self.instance_weight > 0:
            terms["L_INCE_A"] = self.instance_nce(z_a, idx_a, session.banks["A"].entries)
            terms["L_INCE_B"] = self.instance_nce(z_b, idx_b, session.banks["B"].entries)
        terms.update(self.extra_terms(session, z_a, idx_a, z_b, idx_b))
        return terms, z_a, z_b

    def weighted_loss(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        weights = self.loss_weights
        return sum(weights.get(name, 1.0) * value for name, value in terms.items())

    def train_step(self, session: BankSession, x_a: torch.Tensor, idx_a: torch.Tensor,
                   x_b: torch.Tensor, idx_b: torch.Tensor, *, epoch: int,
                   step: int) -> dict[str, torch.Tensor]:
        """One SGD step and bank update (``epoch``, ``step`` 0-based); returns the logged terms."""
        lr = cosine_lr(self.lr, epoch * session.steps_per_epoch + step, session.total_steps)
        for group in session.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        terms, z_a, z_b = self.loss_terms(session, x_a, idx_a, x_b, idx_b)
        check_finite(terms, epoch + 1, step + 1)
        loss = self.weighted_loss(terms)
        session.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        session.optimizer.step()
        session.banks["A"].update(idx_a, z_a)
        session.banks["B"].update(idx_b, z_b)
        return {"loss": loss, **terms}

    def fit(self, pair: DomainPair, work_dir: Path) -> None:
        session = self.start_session(pair)

        def train_epoch(epoch: int) -> dict[str, float]:
            self.encoder.train()
            self.on_epoch_start(session, epoch)
            meter = LossMeter()
            batches = progress_bar(pair.paired_batches(self.batch_size, session.generator,
                                                       num_workers=self.num_workers),
                                   total=session.steps_per_epoch,
                                   desc=f"{self.stage} {epoch + 1}/{self.epochs}")
            for step, (x_a, idx_a, x_b, idx_b) in enumerate(batches):
                meter.add(self.train_step(session, x_a, idx_a, x_b, idx_b, epoch=epoch, step=step))
            return meter.means()

        self.history = run_epochs(
            stage=self.stage, epochs=self.epochs, work_dir=work_dir,
            stateful={"encoder": self.encoder, "optimizer": session.optimizer,
                      "bank_A": session.banks["A"], "bank_B": session.banks["B"],
                      "sampler": GeneratorState(session.generator), **self.extra_state()},
            train_epoch=train_epoch, initialize=lambda: self.initialize_session(session),
            stop_after_epoch=self.stop_after_epoch)

    def describe(self) -> dict:
        info = super().describe()
        info["gap_decisions"].update({
            "optimizer_steps": "one SGD step per paired batch on the sum of both domains' terms",
            "lr_schedule": "cosine to zero, per step; each parameter group scales it by its "
                           "lr_scale",
        })
        if self.instance_weight == 0:
            info["gap_decisions"].pop("negatives", None)
        info["loss_weights"] = dict(self.loss_weights)
        info["flags"] = {}
        return info
