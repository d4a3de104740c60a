"""The seqvae command: every verb on a really trained model, and its error messages."""

import pandas as pd
import pytest

from seqvae.cli import main


def run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_sample_writes_csv_and_grid(capsys, tmp_path, trained_run):
    out = tmp_path / "s.csv"
    code, stdout, _ = run(capsys, "sample", trained_run, "-n", 40, "-o", out, "--seed", 0,
                          "--no-progress", "--temperature", 0.7)
    assert code == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["SMILES", "NLL", "valid"] and len(table) == 40
    assert f"wrote 40 samples to {out}" in stdout
    if table["valid"].any():
        assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_encode_skips_and_counts_bad_rows(capsys, tmp_path, trained_run):
    src = tmp_path / "in.smi"
    src.write_text("CCO\nC1CC\nc1ccccc1\n\n")
    out = tmp_path / "z.csv"
    code, stdout, stderr = run(capsys, "encode", trained_run, src, "-o", out, "--logvar")
    assert code == 0
    table = pd.read_csv(out)
    assert table["SMILES"].tolist() == ["CCO", "c1ccccc1"]
    assert [c for c in table.columns if c.startswith("mu_")] == [f"mu_{i}" for i in range(8)]
    assert "logvar_7" in table.columns
    assert "skipped 2 of 4 inputs" in stderr


def test_reconstruct_and_interpolate(capsys, tmp_path, trained_run):
    out = tmp_path / "r.csv"
    code, stdout, _ = run(capsys, "reconstruct", trained_run, "--smiles", "CCO", "CCN", "-o", out)
    assert code == 0 and "exact" in stdout
    assert len(pd.read_csv(out)) == 2
    out = tmp_path / "i.csv"
    code, _, _ = run(capsys, "interpolate", trained_run, "CCO", "c1ccccc1", "--steps", 4,
                     "--method", "slerp", "-o", out)
    assert code == 0 and len(pd.read_csv(out)) == 4


def test_train_verb_with_overrides_and_resume(capsys, tmp_path, small_data):
    train_csv, valid_csv = small_data
    args = ["train", "--out", tmp_path / "run", "--train-data", train_csv, "--valid-data", valid_csv,
            "--max-steps", 4, "--set", "train.max_minutes=0", "--set", "model.decoder_hidden=32",
            "--set", "model.encoder_hidden=16", "--set", "train.eval_samples=10", "--no-progress"]
    code, stdout, _ = run(capsys, *args)
    assert code == 0 and "trained 4 steps" in stdout
    code, _, stderr = run(capsys, *args)
    assert code == 2 and "--resume" in stderr
    code, stdout, _ = run(capsys, "train", "--out", tmp_path / "run", "--resume", "--max-steps", 6,
                          "--no-progress")
    assert code == 0 and "trained 6 steps" in stdout


@pytest.mark.parametrize("args, message", [
    (["train", "--set", "train.learnin_rate=1"], "unknown key 'train.learnin_rate'"),
    (["sample", "/nonexistent/run"], "does not exist"),
    (["encode", "{run}", "/nonexistent.csv"], "nonexistent.csv"),
    # "~name" of a user this machine does not have: a missing file, not pathlib's RuntimeError
    (["encode", "{run}", "~nosuchuser0/in.csv"], "~nosuchuser0/in.csv"),
    (["interpolate", "{run}", "CCO", "C1CC"], "cannot parse"),
])
def test_errors_are_one_clear_line(capsys, trained_run, args, message):
    args = [a.format(run=trained_run) for a in args]
    code, _, stderr = run(capsys, *args)
    assert code == 2
    assert message in stderr and "Traceback" not in stderr
