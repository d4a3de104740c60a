"""The Python API on a really trained tiny model: sample, encode, decode, reconstruct, interpolate."""

import math

import numpy as np
import pytest
import torch

import seqvae
from seqvae.chem import canonical_smiles
from seqvae.errors import CheckpointError, DataError
from seqvae.trained import slerp

MOLS = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]


def test_load_describes_itself(model, trained_run):
    assert model.molecular and model.latent_dim == 8
    assert "smiles" in repr(model) and "latent 8" in repr(model)
    assert seqvae.load(trained_run / "checkpoint").latent_dim == 8


def test_sample_table_columns_and_canonical_smiles(model):
    table = model.sample(64, seed=0)
    assert list(table.columns) == ["SMILES", "NLL", "valid"]
    assert len(table) == 64
    assert (table["NLL"] > 0).all()
    for smi in table.loc[table["valid"], "SMILES"]:
        assert canonical_smiles(smi) == smi


def test_sampling_is_reproducible_with_a_seed(model):
    a, b = model.sample(20, seed=5), model.sample(20, seed=5)
    assert a.equals(b)
    assert not a["SMILES"].equals(model.sample(20, seed=6)["SMILES"])


def test_sampling_options(model):
    greedy = model.sample(10, greedy=True, seed=1)
    z = torch.randn(10, model.latent_dim, generator=torch.Generator().manual_seed(1))
    decoded = model.decode(z, greedy=True)  # the prior codes sample() drew with this seed
    assert [canonical_smiles(s) or s for s in decoded] == greedy["SMILES"].tolist()
    assert len(model.sample(10, top_k=3, top_p=0.9, seed=1)) == 10


def test_unique_keeps_only_valid_distinct(model):
    table = model.sample(5, unique=True, temperature=0.7, seed=0)
    assert table["valid"].all()
    assert table["SMILES"].is_unique
    assert len(table) <= 5


def test_encode_decode_shapes(model):
    mu, logvar = model.encode(MOLS)
    assert mu.shape == logvar.shape == (3, 8)
    z = model.encode(MOLS, sample=True, seed=0)
    assert z.shape == (3, 8) and not torch.allclose(z, mu)
    mu_again, _ = model.encode(MOLS[::-1])
    assert torch.allclose(mu_again.flip(0), mu, atol=1e-5)  # batching does not change codes
    out = model.decode(mu)
    assert len(out) == 3 and all(isinstance(s, str) for s in out)
    with pytest.raises(DataError, match=r"shape \(N, 8\)"):
        model.decode(torch.zeros(2, 3))


def test_reconstruct_table(model):
    table = model.reconstruct(MOLS)
    assert list(table.columns) == ["input", "reconstruction", "valid", "exact", "similarity"]
    assert table["input"].tolist() == MOLS
    exact = table[table["exact"]]
    assert all(canonical_smiles(a) == canonical_smiles(b)
               for a, b in zip(exact["input"], exact["reconstruction"]))
    assert (exact["similarity"] == 1.0).all()
    assert (table.loc[~table["valid"], "similarity"] == 0.0).all()
    assert table["similarity"].between(0.0, 1.0).all()


def test_reconstruction_similarity():
    from seqvae.domains.molecules import Molecules
    same = Molecules().same(["c1ccccc1O", "c1ccccc1O", "CCO", "not a molecule"],
                            ["Oc1ccccc1", "c1ccccc1N", "C1CC", "CCO"], None)
    assert same["exact"] == [True, False, False, False]
    assert same["similarity"][0] == 1.0 and 0.0 < same["similarity"][1] < 1.0
    assert same["similarity"][2] == 0.0 and same["similarity"][3] != same["similarity"][3]


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolate(model, method):
    table = model.interpolate("CCO", "c1ccccc1O", steps=5, method=method)
    assert list(table["t"]) == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    assert len(table) == 5


def test_slerp_endpoints_and_norm():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b)
    assert torch.allclose(path.norm(dim=1), torch.ones(5), atol=1e-6)  # stays on the circle
    assert torch.allclose(path[2], torch.tensor([1.0, 1.0]) / math.sqrt(2), atol=1e-6)


@pytest.mark.parametrize("bad, message", [
    ("", "empty"),
    ("C1CC", "cannot parse"),
    ("C" * 300, "more than the model's limit"),
    ("[U]", "U"),  # uranium: a valid molecule with a token the vocabulary never saw
])
def test_bad_inputs_are_named(model, bad, message):
    with pytest.raises(DataError, match="1 of 2 inputs") as info:
        model.encode(["CCO", bad])
    assert message in str(info.value)
    assert model.check(["CCO", bad])[0] is None and model.check(["CCO", bad])[1]


def test_single_string_is_a_type_error(model):
    with pytest.raises(TypeError, match="list of strings"):
        model.encode("CCO")


def test_load_refuses_non_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        seqvae.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="missing config.json"):
        seqvae.load(tmp_path / "empty")
    np.save(tmp_path / "x.npy", np.zeros(2))
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        seqvae.load(tmp_path / "x.npy")


def test_verb_functions_of_the_model(model, tmp_path):
    """What the encode / sample / interpolate verbs call: usable, latents, write, summary."""
    kept, rejected = model.usable(["CCO", "C1CC", "", "c1ccccc1O"])
    assert kept == ["CCO", "c1ccccc1O"]
    assert [(row, reason) for row, _, reason in rejected] == [
        (1, "RDKit cannot parse it as SMILES"), (2, "empty")]
    table = model.latents(kept, logvar=True)
    assert list(table.columns[:2]) == ["SMILES", "mu_0"] and table.shape == (2, 1 + 2 * 8)
    mu, _ = model.encode(kept)
    assert np.allclose(table[[f"mu_{i}" for i in range(8)]].to_numpy(), mu.numpy())
    samples = model.sample(30, seed=1, novelty=True)  # molecules: nothing to add
    figures = model.summary(samples)
    assert figures["valid"] == pytest.approx(samples["valid"].mean())
    picture = model.write(samples, tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == "SMILES,NLL,valid"
    assert (picture is None) == (not samples["valid"].any())
    assert model.domain.name == "molecules" and model.domain.column == "SMILES"


def test_old_names_still_import_with_a_warning():
    with pytest.warns(DeprecationWarning):
        old = seqvae.VAEModel
    assert old is seqvae.TrainedModel


def test_optimize_in_python(model):
    from seqvae.search import optimize
    lines = []
    result = optimize(model, "qed", methods=["prior"], budget=12, seed=0, max_atoms=30,
                      log=lines.append)
    values = result.results["objective"].tolist()
    assert values == sorted(values, reverse=True) and result.results["SMILES"].is_unique
    assert result.runs[0]["method"] == "prior" and result.runs[0]["calls"] <= 12
    assert "prior" in result.curves and lines and lines[0].startswith("prior: best")
    assert (result.results["atoms"] <= 30).all()


@pytest.mark.parametrize("top_p", [1e-300, 0.3, 0.999])
def test_nucleus_keeps_at_least_the_most_likely_token(top_p):
    from seqvae.model.vae import filtered_probs
    logits = torch.randn(4, 12, generator=torch.Generator().manual_seed(0))
    probs = filtered_probs(logits, top_p=top_p)
    assert torch.allclose(probs.sum(-1), torch.ones(4))
    kept = probs > 0
    assert kept.gather(1, logits.argmax(-1, keepdim=True)).all()
    if top_p == 1e-300:  # underflows to 0 in float32: only the top token is left
        assert kept.sum(-1).tolist() == [1, 1, 1, 1]


def test_a_temperature_at_the_edge_of_float32_still_samples(model):
    table = model.sample(3, seed=0, temperature=3.4028235677973366e38)
    assert len(table) == 3
