"""One-vs-all open-set losses of OVANet (Saito & Saenko, ICCV 2021, Eqs. 1–3).

OVANet trains, next to a closed-set classifier over the K known classes, K binary classifiers
("one-vs-all" heads): head k answers "is this sample of class k?" with a two-way softmax
(index 1 = positive, index 0 = negative, the layout of the released ``train.py``). Their output
is ``[B, 2, K]``.

* OVA loss on labelled samples (Eq. 1 with hard-negative mining): the positive head of the
  label is pushed up, and of the K − 1 negative heads only the hardest one (lowest negative
  probability) is pushed down —
  ``L_ova = mean_i [ −log p_i(1 | y_i) + max_{k ≠ y_i} −log p_i(0 | k) ]``; OVANet weights
  it by ½ (``loss_open = 0.5 * (pos + neg)``).
* Open-set entropy minimisation on unlabelled samples (Eq. 2): the mean binary entropy of
  every head, ``L_ent = mean_i mean_k H(p_i(· | k))``, which makes each head confident either
  way — known samples align with one class, unknown ones are rejected by all.

The released code takes ``log(p + 1e-8)``; here the logs come from ``log_softmax`` (exact,
finite), which differs from it only when a probability is below ~1e-6.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_open_logits(open_logits: torch.Tensor) -> None:
    if open_logits.ndim != 3 or open_logits.shape[1] != 2:
        raise ValueError(f"open-set logits must be [B, 2, K] (negative, positive per class), got "
                         f"shape {tuple(open_logits.shape)}")


def one_vs_all_loss(open_logits: torch.Tensor, targets: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(positive, hard-negative)`` terms of the OVA loss; OVANet's loss is ``½(pos + neg)``.

    Args:
        open_logits: ``[B, 2, K]`` logits of the K binary heads.
        targets: ``[B]`` class indices in ``0..K-1``.
    """
    _check_open_logits(open_logits)
    num_classes = open_logits.shape[2]
    if len(targets) != len(open_logits):
        raise ValueError(f"{len(targets)} targets for {len(open_logits)} samples")
    if len(targets) and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(f"targets must lie in 0..{num_classes - 1}")
    log_probabilities = F.log_softmax(open_logits, dim=1)
    positive_mask = F.one_hot(targets.long(), num_classes).to(log_probabilities.dtype)
    positive = -(log_probabilities[:, 1, :] * positive_mask).sum(dim=1).mean()
    # The label's own head contributes 0 to the max, as in the code (−log p ≥ 0 elsewhere).
    negative = (-log_probabilities[:, 0, :] * (1 - positive_mask)).max(dim=1).values.mean()
    return positive, negative


def open_set_entropy(open_logits: torch.Tensor) -> torch.Tensor:
    """Mean over samples and heads of each binary head's entropy (OVANet Eq. 2), ``[B, 2, K]`` → scalar."""
    _check_open_logits(open_logits)
    log_probabilities = F.log_softmax(open_logits, dim=1)
    entropy = -(log_probabilities.exp() * log_probabilities).sum(dim=1)   # [B, K]
    return entropy.mean()


def known_probability(closed_logits: torch.Tensor, open_logits: torch.Tensor) -> torch.Tensor:
    """``[B]`` positive probability of the OVA head of each sample's top closed-set class.

    OVANet's test rule: the sample is unknown when this is below ½ (``eval.py``: the negative
    probability of the predicted class exceeds 0.5).
    """
    _check_open_logits(open_logits)
    if closed_logits.shape != (open_logits.shape[0], open_logits.shape[2]):
        raise ValueError(f"closed-set logits {tuple(closed_logits.shape)} do not match the open-set "
                         f"logits {tuple(open_logits.shape)}")
    predicted = closed_logits.argmax(dim=1)
    positive = F.softmax(open_logits, dim=1)[:, 1, :]
    return positive.gather(1, predicted[:, None]).squeeze(1)
