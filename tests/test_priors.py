"""The aggregate prior: fitting, storing beside its model, sampling from it, refusing a prior
that belongs to other weights."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from seqvae.errors import CheckpointError, DataError
from seqvae.priors import GaussianMixture, fit_mixture, load_prior


def test_one_component_is_the_gaussian_fit():
    g = torch.Generator().manual_seed(0)
    cov = torch.tensor([[2.0, 0.8, 0.0], [0.8, 1.0, -0.3], [0.0, -0.3, 0.5]])
    mean = torch.tensor([1.0, -2.0, 0.5])
    z = mean + torch.randn(20_000, 3, generator=g) @ torch.linalg.cholesky(cov).T
    fitted = fit_mixture(z)
    assert fitted.components == 1
    assert torch.allclose(fitted.means[0].float(), mean, atol=0.05)
    fitted_cov = fitted.scale_tril[0] @ fitted.scale_tril[0].T
    assert torch.allclose(fitted_cov.float(), cov, atol=0.06)
    # log p(z) is that of torch's own multivariate normal with those parameters
    reference = torch.distributions.MultivariateNormal(fitted.means[0], scale_tril=fitted.scale_tril[0])
    assert torch.allclose(fitted.log_prob(z[:100]), reference.log_prob(z[:100].double()))


def test_mixture_finds_separated_clusters_and_samples_reproducibly():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3000, 2, generator=g) * 0.3 + torch.tensor([4.0, 0.0])
    b = torch.randn(1000, 2, generator=g) * 0.3 + torch.tensor([-4.0, 0.0])
    mixture = fit_mixture(torch.cat([a, b]), components=2, seed=0)
    order = mixture.means[:, 0].argsort(descending=True)
    assert torch.allclose(mixture.weights[order].float(), torch.tensor([0.75, 0.25]), atol=0.01)
    assert torch.allclose(mixture.means[order].float(), torch.tensor([[4.0, 0.0], [-4.0, 0.0]]),
                          atol=0.05)
    # a two-component fit describes the data better than one Gaussian
    data = torch.cat([a, b])
    assert mixture.log_prob(data).mean() > fit_mixture(data).log_prob(data).mean() + 1.0
    draw = lambda seed: mixture.sample(500, torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(draw(3), draw(3)) and not torch.equal(draw(3), draw(4))
    assert ((draw(5)[:, 0] > 0).float().mean() - 0.75).abs() < 0.06


def test_bad_codes_are_refused():
    with pytest.raises(DataError, match="NaN"):
        fit_mixture(torch.tensor([[0.0, float("nan")], [1.0, 2.0], [3.0, 1.0]]))
    with pytest.raises(DataError, match="too few"):
        fit_mixture(torch.randn(10, 8), components=4)
    with pytest.raises(DataError, match="components"):
        fit_mixture(torch.randn(100, 2), components=0)


def test_a_finished_run_stores_its_aggregate_prior(trained_run, model):
    """The trainer fits the prior to the final weights; sampling from it works and is
    reproducible; its codes look like the training codes more than N(0, I) does."""
    folder = trained_run / "checkpoint"
    meta = json.loads((folder / "prior.json").read_text())
    assert meta["format"] == "seqvae-prior" and meta["components"] == 1
    assert meta["codes"] == 400 and meta["latent_dim"] == model.latent_dim
    mixture, _ = load_prior(folder, model.latent_dim)
    table = model.sample(60, prior="aggregate", seed=7)
    assert len(table) == 60 and set(table.columns) >= {"SMILES", "NLL", "valid"}
    again = model.sample(60, prior="aggregate", seed=7)
    assert table["SMILES"].tolist() == again["SMILES"].tolist()
    assert table["SMILES"].tolist() != model.sample(60, seed=7)["SMILES"].tolist()
    with pytest.raises(DataError, match="prior must be one of"):
        model.sample(5, prior="posterior")


def test_fit_prior_on_given_strings_and_from_the_training_data(trained_run, small_data, tmp_path):
    import seqvae

    folder = tmp_path / "copy"
    shutil.copytree(trained_run / "checkpoint", folder)
    (folder / "prior.json").unlink()
    copy = seqvae.load(folder)
    with pytest.raises(CheckpointError, match="fit-prior"):
        copy.sample(3, prior="aggregate")
    strings = small_data[1].read_text().splitlines()[1:] + ["C1CC", "not a molecule"]
    mixture = copy.fit_prior(strings, components=1, seed=0)
    meta = json.loads((folder / "prior.json").read_text())
    assert meta["skipped"] == 2 and meta["codes"] == len(strings) - 2
    assert seqvae.load(folder).aggregate_prior().means.shape == mixture.means.shape
    # no strings: the model's own training file (data.train of its config), n drawn from it
    copy.fit_prior(n=300, components=2, seed=1)
    meta = json.loads((folder / "prior.json").read_text())
    assert meta["codes"] == 300 and meta["components"] == 2
    assert meta["source"] == str(small_data[0])


def test_a_prior_of_other_weights_or_a_corrupt_one_is_refused(trained_run, tmp_path):
    import seqvae
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "other"
    shutil.copytree(trained_run / "checkpoint", folder)
    weights = load_file(str(folder / "model.safetensors"))
    name = next(iter(weights))
    weights[name] = weights[name] + 0.01
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="fitted on other weights.*fit-prior"):
        seqvae.load(folder).sample(3, prior="aggregate")

    folder = tmp_path / "corrupt"
    shutil.copytree(trained_run / "checkpoint", folder)
    (folder / "prior.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(CheckpointError, match="prior.safetensors is missing, corrupt"):
        seqvae.load(folder).sample(3, prior="aggregate")
    (folder / "prior.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="prior.json is corrupt"):
        seqvae.load(folder).sample(3, prior="aggregate")


def test_exported_models_keep_their_prior(trained_run, tmp_path):
    import seqvae
    from seqvae.checkpoint import export_checkpoint

    out = export_checkpoint(trained_run, tmp_path / "half", half=True)
    meta = json.loads((out / "prior.json").read_text())
    assert meta["weights"] == "float16" and meta["exported_from"].endswith("prior.json")
    assert len(seqvae.load(out).sample(10, prior="aggregate", seed=0)) == 10


def test_cli_fit_prior_and_sample_from_it(trained_run, tmp_path, capsys):
    from seqvae.cli import main

    folder = tmp_path / "cli"
    shutil.copytree(trained_run / "checkpoint", folder)
    (folder / "prior.json").unlink()
    assert main(["sample", str(folder), "-n", "5", "--prior", "aggregate", "-o",
                 str(tmp_path / "s.csv"), "--no-progress"]) == 2
    assert "fit-prior" in capsys.readouterr().err
    assert main(["fit-prior", str(folder), "--n", "200", "--components", "2"]) == 0
    assert "prior.json" in capsys.readouterr().out
    assert main(["sample", str(folder), "-n", "8", "--prior", "aggregate", "--seed", "1",
                 "-o", str(tmp_path / "s.csv"), "--no-progress", "--no-grid"]) == 0
    assert "wrote 8 samples" in capsys.readouterr().out


def test_from_tensors_checks_shapes():
    bad = {"weights": torch.ones(2), "means": torch.zeros(3, 4), "scale_tril": torch.eye(4)[None]}
    with pytest.raises(CheckpointError, match="shapes disagree"):
        GaussianMixture.from_tensors(bad, "prior.safetensors")
