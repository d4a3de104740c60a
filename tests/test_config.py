"""Configs: TOML in and out, unknown keys named, overrides typed, impossible values refused."""

import pytest

from seqvae.config import Config, dump_toml, load_config
from seqvae.errors import ConfigError


def test_defaults_validate_and_round_trip_through_toml(tmp_path):
    cfg = load_config(None, ["train.lr=3e-4", "model.encoder=lstm", 'data.representation="selfies"'])
    assert cfg.train.lr == 3e-4 and cfg.model.encoder == "lstm"
    path = tmp_path / "c.toml"
    path.write_text(dump_toml(cfg))
    assert load_config(path) == cfg


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[train]\nlearning_rate = 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'train.learning_rate'.*valid keys"):
        load_config(path)
    path.write_text("[trian]\nlr = 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown table \[trian\] \(did you mean 'train'\?\)"):
        load_config(path)
    with pytest.raises(ConfigError, match="unknown key 'model.hidden'"):
        load_config(None, ["model.hidden=3"])


def test_override_types_are_checked():
    assert load_config(None, ["train.batch_size=64"]).train.batch_size == 64
    assert load_config(None, ["model.bidirectional=false"]).model.bidirectional is False
    with pytest.raises(ConfigError, match="train.batch_size must be int"):
        load_config(None, ["train.batch_size=big"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["lr"])


@pytest.mark.parametrize("item, message", [
    ("train.kl_schedule=\"sine\"", "kl_schedule must be one of"),
    ("model.decoder=\"rnn\"", "model.decoder must be one of"),
    ("train.word_dropout=1.5", "word_dropout"),
    ("data.representation=\"inchi\"", "representation"),
])
def test_bad_values_are_refused(item, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [item])


def test_a_budget_is_required():
    with pytest.raises(ConfigError, match="budget"):
        load_config(None, ["train.max_minutes=0"])


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_shipped_configs_load():
    from importlib.resources import files
    names = [p.name for p in files("seqvae").joinpath("configs").iterdir() if p.name.endswith(".toml")]
    assert {"moses_smiles.toml", "moses_selfies.toml", "molsets_vae.toml"} <= set(names)
    for name in names:
        assert isinstance(load_config(files("seqvae").joinpath("configs", name)), Config)
