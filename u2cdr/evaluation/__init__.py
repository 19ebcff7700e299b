"""Evaluation: faiss full-gallery ranking, the peer papers' metrics, protocols, open-set rule.

Each metric is a plain function usable without the harness; a registered ``Protocol`` bundles
one paper's choices and is recorded in every result (see ``protocols``).
"""
from u2cdr.evaluation.metrics import (false_reject_rate, map_at_all, open_set_accuracy,
                                      precision_at_k)
from u2cdr.evaluation.open_set import detect_private_generic
from u2cdr.evaluation.protocols import Protocol

__all__ = ["map_at_all", "precision_at_k", "open_set_accuracy", "false_reject_rate",
           "detect_private_generic", "Protocol"]
