"""seqvae.metrics: the same numbers as molsets' get_all_metrics and GuacaMol's KL benchmark
(their own code, run here), invalid samples counted, the reference cache, the CLI verb."""

from __future__ import annotations

import gzip
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from seqvae.metrics import evaluate_molecules, load_reference, molecular_metrics
from seqvae.metrics import _compute as C
from seqvae.metrics import molecules as M

ROOT = Path(__file__).resolve().parent.parent

INVALID = ["", "C1CC", "xyz", "CC(C)(C)(C)(C)C", "c1ccc", "C(("]
SPECIAL = [
    "C[N+](C)(C)Cc1ccccc1",  # charged: fails the MOSES filters
    "C1CCCCCCC1CCN",  # an 8-membered ring: fails the filters
    "S=C1SC(=Cc2ccccc2)C(=O)N1",  # a rhodanine: a PAINS match
    "C[C@H](N)C(=O)O",  # stereo: GuacaMol strips it
    "CCO", "c1ccccc1",  # no scaffold of two rings
]


def _rows(name: str, start: int, n: int) -> list[str]:
    with gzip.open(ROOT / "data" / f"{name}.csv.gz", "rt") as fh:
        return fh.read().splitlines()[1 + start:1 + start + n]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("metrics")
    out = {}
    for name, rows in {"test": _rows("moses_test", 0, 400), "scaffolds": _rows("moses_valid", 5000, 300),
                       "train": _rows("moses_train", 0, 3000)}.items():
        out[name] = folder / f"{name}.csv"
        out[name].write_text("SMILES\n" + "\n".join(rows) + "\n")
    return out


@pytest.fixture(scope="module")
def samples() -> list[str]:
    """Valid molecules, repeats, training and test molecules, special cases and invalid strings."""
    valid = _rows("moses_valid", 0, 150)
    gen = valid + valid[:10] + _rows("moses_train", 0, 8) + _rows("moses_test", 0, 5) + SPECIAL + INVALID
    return [gen[i] for i in np.random.default_rng(0).permutation(len(gen))]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SEQVAE_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setattr(C, "GUACAMOL_SAMPLES", 150)  # both the reference's subset and the samples' cut
    yield
    mp.undo()


@pytest.fixture(scope="module")
def reference(files, cache):
    return load_reference(files["test"], scaffold_test=files["scaffolds"], train=files["train"],
                          n_jobs=2, progress=False)


@pytest.fixture(scope="module")
def ours(samples, reference):
    return molecular_metrics(samples, reference, n_jobs=2, progress=False)


def test_same_numbers_as_molsets(samples, files, ours):
    molsets = pytest.importorskip("benchmarks.molsets_metrics").import_molsets_metrics()
    read = lambda p: p.read_text().split()[1:]  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = molsets.get_all_metrics(samples, test=read(files["test"]),
                                         test_scaffolds=read(files["scaffolds"]),
                                         train=read(files["train"]))
    assert set(theirs) <= set(ours)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(float(value), abs=1e-6), key
    # the samples exercise what they are meant to
    assert 0 < ours["Filters"] < 1 and 0 < ours["Novelty"] < 1 and ours["valid"] < 1


def test_invalid_counted(samples, ours):
    assert ours["n_samples"] == len(samples)
    assert ours["n_invalid"] == len(INVALID)
    assert ours["valid"] == pytest.approx(1 - len(INVALID) / len(samples))
    assert set(ours) >= {"KL score", "FCD score", "logP/TestSF", "weight/TestSF"}
    assert 0 < ours["KL score"] <= 1 and 0 < ours["FCD score"] <= 1


def test_guacamol_kl_score_matches_guacamol(samples, files, reference, ours):
    pytest.importorskip("guacamol")
    import scipy
    if not hasattr(scipy, "histogram"):  # guacamol 0.5.5 imports numpy's histogram from scipy
        scipy.histogram = np.histogram
    from guacamol.distribution_learning_benchmark import KLDivBenchmark
    from guacamol.distribution_matching_generator import DistributionMatchingGenerator

    class Replay(DistributionMatchingGenerator):
        def __init__(self, strings):
            self.strings = list(strings)

        def generate(self, number_samples):
            out, self.strings = self.strings[:number_samples], self.strings[number_samples:]
            return out

    test = files["test"].read_text().split()[1:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = KLDivBenchmark(150, test).assess_model(Replay(s for s in samples if s))
    assert ours["KL score"] == pytest.approx(result.score, abs=1e-6)


def test_all_invalid_is_not_fatal(reference):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = molecular_metrics(INVALID, reference, n_jobs=1, progress=False)
    assert got["valid"] == 0 and got["n_invalid"] == len(INVALID)
    assert math.isnan(got["FCD/Test"]) and math.isnan(got["IntDiv"])


def test_no_samples_is_an_error(reference):
    from seqvae.errors import DataError
    with pytest.raises(DataError, match="no samples"):
        molecular_metrics([], reference, progress=False)


def test_reference_cache_is_reused_and_never_pickled(files, reference, monkeypatch):
    from seqvae.metrics import reference as R

    folders = list((R.cache_dir() / "references").iterdir())
    assert len(folders) == 1
    assert sorted(p.name for p in folders[0].iterdir()) == ["arrays.safetensors", "counts.json",
                                                            "meta.json"]
    monkeypatch.setattr(R, "split_stats", lambda *a, **k: pytest.fail("recomputed"))
    again = load_reference(files["test"], scaffold_test=files["scaffolds"], train=files["train"],
                           progress=False)
    np.testing.assert_array_equal(again.splits["Test"].fps, reference.splits["Test"].fps)
    assert again.splits["TestSF"].scaf == reference.splits["TestSF"].scaf
    # a damaged cache is computed again, not trusted
    monkeypatch.undo()
    (folders[0] / "arrays.safetensors").write_bytes(b"garbage")
    rebuilt = load_reference(files["test"], scaffold_test=files["scaffolds"], progress=False)
    np.testing.assert_allclose(rebuilt.splits["Test"].fcd_mu, reference.splits["Test"].fcd_mu,
                               atol=1e-5)


def test_missing_reference_file_is_an_error(tmp_path):
    from seqvae.errors import DataError
    with pytest.raises(DataError, match="no such reference file"):
        load_reference(tmp_path / "nope.csv", progress=False)


def test_similarities_match_brute_force():
    rng = np.random.default_rng(1)
    gen = rng.random((70, 64)) < rng.uniform(0.05, 0.5, (70, 1))
    ref = rng.random((300, 64)) < rng.uniform(0.05, 0.5, (300, 1))
    gen[0] = 0  # an empty vector: similarity 1 to another empty one, as molsets sets it
    ref[0] = 0
    inter = gen.astype(float) @ ref.T.astype(float)
    union = gen.sum(1)[:, None] + ref.sum(1)[None, :] - inter
    brute = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    packed = lambda x: np.packbits(x.astype(np.uint8), axis=1)  # noqa: E731
    got = M.nearest_neighbour_similarity(packed(gen), packed(ref), block=16)
    np.testing.assert_allclose(got, brute.max(1), atol=1e-12)
    inter = gen.astype(float) @ gen.T.astype(float)
    union = gen.sum(1)[:, None] + gen.sum(1)[None, :] - inter
    self_sim = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    sums, squares = M.internal_similarity_sums(packed(gen), block=16)
    np.testing.assert_allclose(sums, self_sim.sum(1), rtol=1e-6)
    np.testing.assert_allclose(squares, (self_sim ** 2).sum(1), rtol=1e-6)


def test_chemnet_encoding_matches_fcd_torch():
    from fcd_torch.utils import get_one_hot
    net = M.ChemNet()
    for smiles in ["CCO", "ClCc1ccc(Br)cc1", "C[Si](C)(C)O", "c1cc[nH]c1", "C" * 400, "CC[Se]C"]:
        expected = get_one_hot(smiles, 350).argmax(1)
        ids = net.encode(smiles)
        assert ids == list(expected[:len(ids)]), smiles
        assert not get_one_hot(smiles, 350)[len(ids):].any()


def test_evaluate_cli(tmp_path, files, reference, samples, capsys):
    from seqvae.cli import main

    path = tmp_path / "samples.csv"
    path.write_text("SMILES\n" + "\n".join(f'"{s}"' for s in samples) + "\n")
    out = tmp_path / "metrics.json"
    code = main(["evaluate", str(path), "--reference", str(files["test"]), "--scaffold-reference",
                 str(files["scaffolds"]), "--train", str(files["train"]), "-o", str(out),
                 "--no-progress", "--device", "cpu"])
    assert code == 0
    saved = json.loads(out.read_text())
    assert saved["metrics"]["n_invalid"] == len(INVALID)
    assert "FCD/TestSF" in capsys.readouterr().out
    for picture in ("metrics_properties.png", "metrics_molecules.png"):
        assert (tmp_path / picture).stat().st_size > 10_000


def test_report_has_properties(samples, reference):
    report = evaluate_molecules(samples[:40], reference, n_jobs=1, progress=False)
    valid = report.metrics["n_samples"] - report.metrics["n_invalid"]
    assert list(report.properties.columns) == ["SMILES", "logP", "SA", "QED", "weight"]
    assert len(report.properties) == valid
    assert report.properties["QED"].between(0, 1).all()


def test_collapsed_samples_score_zero_on_that_kl_term(reference):
    # an untrained model that writes one molecule over and over: every descriptor is a
    # point mass, GuacaMol's own code raises there; seqvae scores those terms exp(-inf) = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        isomers = molecular_metrics(["CCO", "COC"] * 20, reference, n_jobs=1, progress=False)
        one = molecular_metrics(["CCO"] * 40, reference, n_jobs=1, progress=False)
    assert 0 < isomers["KL score"] < 0.5  # one weight for both: that term is 0
    assert one["KL score"] == 0.0
    assert M.continuous_kldiv(np.linspace(0, 1, 50), np.full(30, 0.3)) == math.inf
    ref = np.random.default_rng(0).normal(size=(200, 9))
    same = M.kl_score(ref, ref[:, 0], ref, ref[:, 0])[0]
    assert same == pytest.approx(1.0, abs=1e-6)


def test_filter_screen_gives_the_unscreened_answer():
    # NCI molecules (RDKit's own sample data) often hit an MCF or PAINS pattern; MOSES ones never
    from rdkit import Chem, RDConfig

    from seqvae.metrics import _features as F

    nci = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
    smiles = [line.split()[0] for line in nci.read_text().splitlines()[:400]] if nci.exists() else []
    smiles += SPECIAL + _rows("moses_test", 0, 100)
    patterns, _ = F._filters()
    hits = 0
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        if mol is None:
            continue
        h_mol = Chem.AddHs(mol)
        expected = any(h_mol.HasSubstructMatch(p) for p in patterns)  # molsets' search
        assert F.matches_filter(h_mol) == expected, s
        hits += expected
    assert hits > 0 and hits < len(smiles)


def test_validity_follows_molsets_second_sanitisation():
    # molsets' get_mol sanitises twice; the second pass rejects this one, which one parse accepts
    from seqvae.chem import to_mol
    from seqvae.metrics._features import canonical_pairs, parse_as_molsets

    rejected = "CCCOc1ccc(C=2sc3ncnn3c2=O)cc1"
    assert to_mol(rejected) is not None and parse_as_molsets(rejected) is None
    assert canonical_pairs([rejected, "CCO", "", "C1CC"]) == [None, ("CCO", "CCO"), None, None]
    pytest.importorskip("benchmarks.molsets_metrics").import_molsets_metrics()  # its shims
    from moses.metrics.utils import get_mol
    assert get_mol(rejected) is None


def test_max_internal_similarity_and_index_match_brute_force():
    rng = np.random.default_rng(2)
    fps = rng.random((90, 4096)) < rng.uniform(0.002, 0.05, (90, 1))
    fps[1] = fps[0]  # a duplicate: similarity 1 to another one of the set
    fps[2] = 0
    inter = fps.astype(float) @ fps.T.astype(float)
    union = fps.sum(1)[:, None] + fps.sum(1)[None, :] - inter
    sim = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    np.fill_diagonal(sim, 0)
    packed = np.packbits(fps.astype(np.uint8), axis=1)
    np.testing.assert_allclose(C.max_internal_similarity(packed, block=32), sim.max(1), atol=1e-6)
    # SNN against a prebuilt (cached) index is SNN against the fingerprints
    ref = np.packbits((rng.random((200, 1024)) < 0.04).astype(np.uint8), axis=1)
    gen = np.packbits((rng.random((30, 1024)) < 0.04).astype(np.uint8), axis=1)
    np.testing.assert_array_equal(C.nearest_neighbour_similarity(gen, C.NeighbourIndex.build(ref)),
                                  C.nearest_neighbour_similarity(gen, ref))


def test_frechet_distance_matches_fcd_torch():
    from fcd_torch.utils import calculate_frechet_distance

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(600, 40)), rng.normal(1.0, 2.0, size=(700, 40))
    args = (a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))
    assert C.frechet_distance(*args) == pytest.approx(calculate_frechet_distance(*args), abs=1e-9)


def test_small_inputs_start_no_worker_processes():
    with C.Workers(2) as workers:
        out = workers.map(len, ["CCO"] * 10, "", False)
        assert out == [10] and workers.executor is None
        assert workers.map(len, ["C"] * (C.CHUNK + 1), "", False) == [C.CHUNK, 1]
        assert workers.executor is not None
