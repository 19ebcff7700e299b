"""dann: the reversed gradient reaches the encoder, the λ ramp, the optimiser groups, resume."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from u2cdr.methods._trainer import EpochCheckpoint, TrainingInterrupted
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="dann", backbone=dict(type="small_cnn", width=8), epochs=2, batch_size=16,
            lr=0.05, discriminator_hidden=16)


def _build(**overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def _batch(pair, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    images_a = torch.stack([pair.query.images(train=False)[i][0] for i in range(size)])
    images_b = torch.stack([pair.gallery.images(train=False)[i][0] for i in range(size)])
    return images_a, images_b


def _gradients(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}


def test_reversal_flips_and_scales_the_encoder_gradient_but_not_the_discriminators(tiny_pair) -> None:
    method = _build()
    images_a, images_b = _batch(tiny_pair)
    targets = torch.cat([torch.ones(8), torch.zeros(8)])

    method.adversarial_loss(method.encoder(images_a), method.encoder(images_b), 0.5).backward()
    reversed_encoder, reversed_classifier = _gradients(method.encoder), _gradients(method.domain_classifier)
    method.encoder.zero_grad()
    method.domain_classifier.zero_grad()
    logits = method.domain_classifier(torch.cat([method.encoder(images_a), method.encoder(images_b)]))
    F.binary_cross_entropy_with_logits(logits, targets).backward()
    plain_encoder, plain_classifier = _gradients(method.encoder), _gradients(method.domain_classifier)

    assert reversed_encoder.keys() == plain_encoder.keys() and len(plain_encoder) > 4
    for name, gradient in plain_encoder.items():
        assert torch.allclose(reversed_encoder[name], -0.5 * gradient, atol=1e-7), name
    assert any(g.abs().max() > 0 for g in plain_encoder.values())
    for name, gradient in plain_classifier.items():
        assert torch.allclose(reversed_classifier[name], gradient, atol=1e-7), name


def test_lambda_follows_the_dann_ramp_or_stays_constant() -> None:
    method = _build(adversarial_weight=0.3)
    for progress in (0.0, 0.1, 1.0):
        method.progress = progress
        assert method.grl_coefficient() == pytest.approx(
            0.3 * (2 / (1 + math.exp(-10 * progress)) - 1), rel=1e-9)
    assert _build(grl_schedule="constant", adversarial_weight=0.3).grl_coefficient() == 0.3


def test_a_step_sets_progress_and_trains_the_discriminator_at_its_own_rate(tiny_pair) -> None:
    method = _build(discriminator_lr_scale=10.0)
    session = method.start_session(tiny_pair)
    method.initialize_session(session)
    before = [p.detach().clone() for p in method.domain_classifier.parameters()]
    x_a, x_b = _batch(tiny_pair)
    terms = method.train_step(session, x_a, torch.arange(8), x_b, torch.arange(8), epoch=1, step=2)
    assert method.progress == pytest.approx((session.steps_per_epoch + 2) / session.total_steps)
    assert set(terms) == {"loss", "L_INCE_A", "L_INCE_B", "L_DAL"}
    assert terms["L_DAL"].item() == pytest.approx(math.log(2), abs=0.1)  # untrained: near chance
    encoder_group, classifier_group = session.optimizer.param_groups
    assert classifier_group["lr"] == pytest.approx(10 * encoder_group["lr"]) and encoder_group["lr"] > 0
    assert any(not torch.equal(b, p) for b, p in zip(before, method.domain_classifier.parameters()))


def test_interrupted_fit_resumes_and_matches_a_straight_run(tiny_pair, tmp_path) -> None:
    interrupted = _build()
    interrupted.stop_after_epoch = 1
    with pytest.raises(TrainingInterrupted, match="after epoch 1/2"):
        interrupted.fit(tiny_pair, tmp_path / "cell")
    saved = EpochCheckpoint(tmp_path / "cell", "dann").load()
    assert {"encoder", "domain_classifier", "bank_A", "bank_B"} <= set(saved["state"])

    resumed = _build()
    resumed.fit(tiny_pair, tmp_path / "cell")
    straight = _build()
    straight.fit(tiny_pair, tmp_path / "straight")
    assert [row["L_DAL"] for row in resumed.history] == [row["L_DAL"] for row in straight.history]
    for module in ("encoder", "domain_classifier"):
        for (key, value), other in zip(getattr(resumed, module).state_dict().items(),
                                       getattr(straight, module).state_dict().values()):
            assert torch.equal(value, other), f"{module}.{key}"


def test_record_states_the_adaptation_and_bad_options_are_named() -> None:
    info = _build().describe()
    assert "instance discrimination" in info["adaptation"]
    assert info["gap_decisions"]["grl"].startswith("lambda = 1.0 * (2/(1+exp(-10.0 p)) - 1)")
    with pytest.raises(ConfigError, match="'linear'.*dann, constant"):
        _build(grl_schedule="linear")
    with pytest.raises(ConfigError, match="adversarial_weight >= 0"):
        _build(adversarial_weight=-1.0)
