"""Aggressive inference-network training (He et al. 2019; train.aggressive_fraction): during
its share of the budget the encoder is updated alone until its loss stops falling, then the
decoder alone once, and again; after it both train together."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from seqvae.config import load_config
from seqvae.errors import ConfigError
from seqvae.trainer import Trainer

QUIET = dict(progress=False, log=lambda *_: None)


def _sides(trainer: Trainer) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Copies of the inference parameters (encoder, posterior) and of all the others."""
    inference = {id(p) for m in trainer.model.inference_modules() for p in m.parameters()}
    mine, rest = {}, {}
    for name, parameter in trainer.model.named_parameters():
        (mine if id(parameter) in inference else rest)[name] = parameter.detach().clone()
    return mine, rest


def _changed(before: dict[str, torch.Tensor], trainer: Trainer) -> bool:
    now = dict(trainer.model.named_parameters())
    return any(not torch.equal(value, now[name]) for name, value in before.items())


def test_each_aggressive_step_updates_one_side_then_both_train_together(tmp_path, small_data):
    # window longer than the inner loop: only aggressive_max_inner ends it, so the steps go
    # encoder x3, decoder, encoder x3, decoder, ... for the first half of the 40 steps
    config = tiny_config(tmp_path / "run", *small_data, **{
        "train.aggressive_fraction": 0.5, "train.aggressive_max_inner": 3,
        "train.aggressive_window": 10, "train.free_bits": 0.0})
    trainer = Trainer(config, **QUIET)
    trainer.setup()
    batches = trainer._batches_within_budget()  # epoch after epoch
    updated = []
    for _ in range(22):
        encoder, decoder = _sides(trainer)
        assert trainer.train_step(next(batches)) is not None
        updated.append((_changed(encoder, trainer), _changed(decoder, trainer)))
    encoder_only, decoder_only, both = (True, False), (False, True), (True, True)
    assert updated[:20] == [encoder_only] * 3 + [decoder_only] + [encoder_only] * 3 \
        + [decoder_only] + [encoder_only] * 3 + [decoder_only] + [encoder_only] * 3 \
        + [decoder_only] + [encoder_only] * 3 + [decoder_only]
    assert updated[20:] == [both, both]  # step 20 of 40: the phase is over
    state = trainer.state
    assert state.aggressive_done
    assert (state.aggressive_encoder_steps, state.aggressive_decoder_steps) == (15, 5)
    assert trainer.summary()["aggressive"] == {"encoder_steps": 15, "decoder_steps": 5}
    # nothing is left frozen by the phase
    assert all(p.requires_grad for p in trainer.model.parameters())
    # the counters travel in the checkpoint: a resumed run does not start the phase again
    trainer.save()
    resumed = Trainer(config, resume=True, **QUIET)
    resumed.setup()
    assert resumed.state.aggressive_done
    assert resumed.state.aggressive_encoder_steps == 15


def test_inner_loop_ends_when_its_windowed_loss_stops_falling(tmp_path, small_data):
    config = tiny_config(tmp_path / "run", *small_data, **{
        "train.aggressive_fraction": 1.0, "train.aggressive_max_inner": 100,
        "train.aggressive_window": 2})
    trainer = Trainer(config, **QUIET)
    trainer.setup()
    state = trainer.state
    for loss in (5.0, 4.0, 3.0, 2.0, 2.5, 2.1):  # window means 4.5, 2.5, 2.3: still falling
        trainer._aggressive_count("encoder", loss)
    assert not state.aggressive_inner_over and state.aggressive_inner == 6
    trainer._aggressive_count("encoder", 2.4)
    assert not state.aggressive_inner_over  # the window is not full yet
    trainer._aggressive_count("encoder", 2.6)  # mean 2.5, no lower than 2.3
    assert state.aggressive_inner_over
    assert trainer._aggressive_phase(trainer.state.step, False) == "decoder"
    trainer._aggressive_count("decoder", 2.0)  # the decoder's update starts a new inner loop
    assert not state.aggressive_inner_over and state.aggressive_inner == 0
    assert state.aggressive_previous < 0
    assert trainer._aggressive_phase(trainer.state.step, False) == "encoder"
    assert (state.aggressive_encoder_steps, state.aggressive_decoder_steps) == (8, 1)
    # the cap ends a loop whose loss keeps falling
    trainer.config.train.aggressive_max_inner = 3
    for loss in (3.0, 2.0, 1.0):
        trainer._aggressive_count("encoder", loss)
    assert state.aggressive_inner_over


def test_no_aggressive_phase_while_pretraining_or_when_off(tmp_path, small_data):
    config = tiny_config(tmp_path / "run", *small_data, **{"train.aggressive_fraction": 0.5})
    trainer = Trainer(config, **QUIET)
    trainer.setup()
    assert trainer._aggressive_phase(0, pretraining=True) is None
    assert trainer._aggressive_phase(0, pretraining=False) == "encoder"
    trainer.config.train.aggressive_fraction = 0.0
    assert trainer._aggressive_phase(0, pretraining=False) is None


@pytest.mark.parametrize("items, message", [
    (["train.aggressive_fraction=1.5"], "aggressive_fraction must be in"),
    (["train.aggressive_fraction=0.2", "train.aggressive_window=0"], "at least 1"),
    (["train.aggressive_fraction=0.2", "train.freeze_encoder=true", 'train.init="x"'],
     "freeze_encoder keeps it fixed"),
])
def test_impossible_aggressive_settings_are_refused(items, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, items)


def test_a_language_model_has_no_encoder_to_train_aggressively(tmp_path, small_data):
    config = tiny_config(tmp_path / "run", *small_data, **{
        "train.aggressive_fraction": 0.3, "model.use_latent": False})
    with pytest.raises(ConfigError, match="this model has none"):
        Trainer(config, **QUIET).setup()
