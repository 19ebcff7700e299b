"""CDS: the cross-domain term reads the other domain's bank; options and description."""
from __future__ import annotations

import pytest
import torch

from u2cdr.losses.cross_domain_entropy import CrossDomainEntropy
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="cds", backbone=dict(type="small_cnn", width=8), batch_size=16, lr=0.05)


def _build(**overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def test_each_domain_is_matched_against_the_other_domains_bank(tiny_pair) -> None:
    method = _build(top_k=5)
    session = method.start_session(tiny_pair)
    method.initialize_session(session)
    x_a, idx_a, x_b, idx_b = next(tiny_pair.paired_batches(8, torch.Generator().manual_seed(0)))
    method.encoder.eval()
    with torch.no_grad():
        terms, z_a, z_b = method.loss_terms(session, x_a, idx_a, x_b, idx_b)
        expected = CrossDomainEntropy(temperature=0.1, top_k=5)
        assert terms["L_CDM_A"].item() == pytest.approx(
            expected(z_a, session.banks["B"].entries).item(), rel=1e-6)
        assert terms["L_CDM_B"].item() == pytest.approx(
            expected(z_b, session.banks["A"].entries).item(), rel=1e-6)
        # Bank A now holds random directions and one B feature, which B's features match sharply.
        random_bank = torch.randn(session.banks["A"].entries.shape,
                                  generator=torch.Generator().manual_seed(0))
        random_bank[0] = z_b[0]
        session.banks["A"].entries.copy_(torch.nn.functional.normalize(random_bank, dim=1))
        changed, _, _ = method.loss_terms(session, x_a, idx_a, x_b, idx_b)
    assert changed["L_CDM_A"].item() == pytest.approx(terms["L_CDM_A"].item(), rel=1e-6)
    assert changed["L_CDM_B"].item() != pytest.approx(terms["L_CDM_B"].item(), rel=1e-3)
    assert changed["L_INCE_A"].item() != pytest.approx(terms["L_INCE_A"].item(), rel=1e-3)


def test_description_records_the_readings() -> None:
    info = _build(top_k=700, cross_domain_weight=0.5).describe()
    assert info["loss_weights"] == {"L_INCE_A": 1.0, "L_INCE_B": 1.0, "L_CDM_A": 0.5, "L_CDM_B": 0.5}
    assert "top 700" in info["gap_decisions"]["cross_domain_anchors"]
    assert info["flags"] == {}
    assert "whole memory bank" in _build().describe()["gap_decisions"]["cross_domain_anchors"]


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="cross_domain_weight must be >= 0"):
        _build(cross_domain_weight=-1.0)
    with pytest.raises(ConfigError, match="top_k"):
        _build(top_k=0)
    with pytest.raises(ConfigError, match="n_neighbor.*Accepted keys.*top_k"):
        _build(n_neighbor=5)
