"""benchmarks/latent_use.py: the chance level of reconstruction and a report computed from its
records."""

import json

import pytest

from benchmarks import latent_use


def test_chance_tanimoto_is_one_for_copies_and_lower_for_different_molecules():
    assert latent_use.chance_tanimoto(["CCO"] * 5) == pytest.approx(1.0)
    mixed = ["CCO", "c1ccccc1", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "O=C(O)c1ccccc1O"]
    assert 0.0 <= latent_use.chance_tanimoto(mixed) < 0.5


def _record(rate: float, tanimoto: float, r2: float) -> dict:
    per_target = {t: {"mean": r2, "std": 0.0, "splits": [r2]} for t in ("logP", "QED")}
    return {"model": "m", "free_bits": rate / 64, "latent_dim": 64,
            "likelihood": {"rate": rate, "distortion": 20.0, "iw_nll": 21.0, "active_units": 3,
                           "latent_dim": 64, "mutual_information": rate / 2},
            "reconstruction": {"exact": 0.0, "valid": 0.9, "tanimoto": tanimoto,
                               "chance_tanimoto": 0.1},
            "interpolation": {"valid": 0.9, "neighbour_tanimoto": 0.7},
            "features": {"features": {"latent mean": {"ridge": per_target, "mlp": per_target}}},
            "command": "python -m benchmarks.latent_use --model m", "load_average": None,
            "machine": {"cpu": "test"}}


def test_table_orders_by_rate_and_computes_its_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(latent_use, "RECORDS", tmp_path)
    monkeypatch.setattr(latent_use, "REPORT", tmp_path / "latent_use.md")
    (tmp_path / "high.json").write_text(json.dumps(_record(18.0, 0.6, 0.8)))
    (tmp_path / "low.json").write_text(json.dumps(_record(2.0, 0.3, 0.2)))
    text = (tmp_path / latent_use.table()).read_text()
    rows = [line for line in text.splitlines() if " x 64 |" in line]
    assert [r.split()[1] for r in rows] == ["low", "high"]
    assert "lowest rate measured (low, 2.00 nats" in text
    assert "0.300 with their inputs against 0.100 by chance (3.00x)" in text
    assert "at the highest (high, 18.00 nats) 0.600" in text
