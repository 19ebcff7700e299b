"""dn2a: dual nearest-neighbour search, positive masks, one training step, strong views, config."""
from __future__ import annotations

import pytest
import torch

from u2cdr.methods._trainer import make_sgd
from u2cdr.methods.dn2a import StrongAugmentation, dual_nearest_neighbours
from u2cdr.models.memory_bank import MomentumMemoryBank
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="dn2a", backbone=dict(type="small_cnn", width=8), epochs=1, batch_size=16, lr=0.05)


def _build(**overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def _points(*xs: float) -> torch.Tensor:
    """1-D positions as 2-D rows (x, 0)."""
    return torch.tensor([[x, 0.0] for x in xs])


# Domain A: two close pairs and a far pair; domain B: one point near each of the first two pairs
# and one (6.8) whose own nearest A-entry (5.2) is neither anchor 9.0 nor its neighbour 9.3.
BANK_A = _points(0.0, 0.1, 5.0, 5.2, 9.0, 9.3)
BANK_B = _points(0.04, 5.12, 6.8)


def test_dual_nearest_neighbours_by_hand() -> None:
    found = dual_nearest_neighbours(torch.tensor([0, 2, 4]), BANK_A, BANK_B)
    assert found.in_domain.tolist() == [[1], [3], [5]]
    assert found.cross.tolist() == [0, 1, 2]
    # 0.04 leads back to anchor 0 itself; 5.12 back to 5.2, anchor 2's in-domain neighbour;
    # 6.8 back to 5.2, unrelated to anchor 9.0.
    assert found.trusted.tolist() == [True, True, False]
    wider = dual_nearest_neighbours(torch.tensor([4]), BANK_A, BANK_B, num_in_domain=2)
    assert wider.in_domain.tolist() == [[5, 3]] and wider.trusted.tolist() == [True]
    with pytest.raises(ValueError, match="num_in_domain must lie in 1..5"):
        dual_nearest_neighbours(torch.tensor([0]), BANK_A, BANK_B, num_in_domain=6)


def test_centring_removes_a_constant_domain_offset() -> None:
    """B is A's layout moved by ~100: raw search sends every anchor to B's nearest edge."""
    bank_a, bank_b = _points(0.0, 1.0, 5.0, 6.0), _points(101.0, 105.0)
    raw = dual_nearest_neighbours(torch.tensor([0, 2]), bank_a, bank_b)
    assert raw.cross.tolist() == [0, 0]
    # Centred (A − 3, B − 103): anchor 0 → −2 ↔ entry 1 (its neighbour), anchor 2 → 2 ↔ itself.
    centred = dual_nearest_neighbours(torch.tensor([0, 2]), bank_a, bank_b, centre=True)
    assert centred.cross.tolist() == [0, 1] and centred.trusted.tolist() == [True, True]


@pytest.mark.parametrize("cross, row_b, rate", [("dual", [4, 5], 0.5), ("all", [4, 5, 8], 1.0),
                                                ("off", [4, 5], 0.0)])
def test_positive_mask_over_both_banks(cross, row_b, rate) -> None:
    method = _build(cross_neighbours=cross, centre_cross=False)
    method.banks = {"A": MomentumMemoryBank(6, 2), "B": MomentumMemoryBank(3, 2)}
    method.banks["A"].initialize(BANK_A)
    method.banks["B"].initialize(BANK_B)
    method.banks["A"].entries.copy_(BANK_A)  # keep the raw positions (initialize normalises)
    method.banks["B"].entries.copy_(BANK_B)
    mask, cross_rate = method.positive_mask("A", torch.tensor([0, 4]), use_neighbours=True)
    assert mask.shape == (2, 9)  # columns: A's 6 entries, then B's 3
    assert torch.nonzero(mask[0]).flatten().tolist() == ([0, 1, 6] if cross != "off" else [0, 1])
    assert torch.nonzero(mask[1]).flatten().tolist() == row_b
    assert cross_rate.item() == pytest.approx(rate)
    own_only, _ = method.positive_mask("B", torch.tensor([2]), use_neighbours=False)
    assert torch.nonzero(own_only[0]).flatten().tolist() == [6 + 2]


def test_own_domain_negatives_keep_only_the_cross_positive_of_the_other_bank() -> None:
    method = _build(negatives="own_domain")
    method.banks = {"A": MomentumMemoryBank(6, 2), "B": MomentumMemoryBank(3, 2)}
    positives = torch.zeros(2, 9, dtype=torch.bool)
    positives[0, [0, 1, 6]] = True
    positives[1, [4, 5]] = True
    candidates = method.candidate_mask("A", positives)
    assert torch.nonzero(candidates[0]).flatten().tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert torch.nonzero(candidates[1]).flatten().tolist() == [0, 1, 2, 3, 4, 5]
    assert torch.nonzero(method.candidate_mask("B", positives[1:] & False)[0]).flatten().tolist() == [6, 7, 8]
    assert _build().candidate_mask("A", positives) is None  # both_domains: everything


def test_one_step_lowers_the_loss_and_changes_features(tiny_pair) -> None:
    method = _build()
    method.build_banks(tiny_pair)
    method.initialize_banks(tiny_pair)
    x_a, idx_a, x_b, idx_b = next(tiny_pair.paired_batches(16, torch.Generator().manual_seed(0),
                                                           train=False))
    before_features = method.embed(tiny_pair.query)
    optimizer = make_sgd(method.encoder.parameters(), lr=0.05)

    def loss() -> torch.Tensor:
        terms, _, rates = method.loss_terms(x_a, idx_a, x_b, idx_b)
        assert 0.0 <= float(rates["cross_positive_rate_A"]) <= 1.0
        return terms["L_DN2A_A"] + terms["L_DN2A_B"]

    first = loss()
    optimizer.zero_grad()
    first.backward()
    optimizer.step()
    assert loss().item() < first.item()
    assert not torch.allclose(torch.from_numpy(method.embed(tiny_pair.query)),
                              torch.from_numpy(before_features))


def test_fit_records_neighbour_rates_and_readings(tiny_pair, tmp_path) -> None:
    method = _build(neighbour_start_epoch=1, epochs=2)
    method.fit(tiny_pair, tmp_path)
    first, second = method.history
    assert first["cross_positive_rate_A"] == 0.0  # neighbours start in epoch 2
    assert 0.0 <= second["cross_positive_rate_A"] <= 1.0
    described = method.describe()
    assert described["distance"] == "euclidean"
    assert described["gap_decisions"]["cross_neighbours"].startswith("dual")


def test_strong_augmentation_blurs_and_erases() -> None:
    image = torch.zeros(1, 28, 28)
    image[:, 10:18, 10:18] = 1.0
    blurred = StrongAugmentation(lambda x: x.clone(), blur_p=1.0, erase_p=0.0)(image)
    assert blurred.shape == image.shape
    assert blurred[0, 9, 12] > 0 and blurred[0, 10, 12] < 1.0  # the square's edge spreads out
    torch.manual_seed(0)
    erased = StrongAugmentation(lambda x: torch.ones(1, 28, 28), blur_p=0.0, erase_p=1.0)(image)
    assert 0 < int((erased == 0).sum()) <= 0.15 * 28 * 28 + 1


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="'mutual'.*dual, all, off"):
        _build(cross_neighbours="mutual")
    with pytest.raises(ConfigError, match="erase_p must lie in"):
        _build(erase_p=1.5)
    with pytest.raises(ConfigError, match="'pooled'.*head, backbone"):
        _build(embedding="pooled")
