"""benchmarks/representations.py: its measurements on the tiny trained model and on made-up
codes whose answer is known."""

from __future__ import annotations

import bz2
import gzip
import lzma
import math

import numpy as np
import pytest
import torch

from benchmarks import representations as R

MOLECULES = ["CCOc1ccccc1", "CC(=O)Nc1ccc(O)cc1", "c1ccncc1", "CCN(CC)CC", "OCC1CCCCC1",
             "CC(C)Cc1ccc(C(C)C(=O)O)cc1"]


def test_code_length_is_the_importance_weighted_nll_in_bits(model) -> None:
    from seqvae.metrics.text import importance_weighted

    figures = R.likelihood(model, MOLECULES, k=8, seed=3)
    # the same estimate computed directly: one batch in order of length, the same generator
    order = np.argsort([len(model.tokenizer.encode(s)) for s in MOLECULES], kind="stable")
    (tokens, lengths), = model._batches([model.tokenizer.encode(MOLECULES[i]) for i in order],
                                        len(order))
    direct = importance_weighted(model.model, tokens, lengths, 8,
                                 torch.Generator().manual_seed(3))
    chars = sum(len(s) + 1 for s in MOLECULES)
    nll = float(direct["nll"].double().sum())
    assert figures["bits_per_char"]["iw_nll"] == pytest.approx(nll / math.log(2) / chars,
                                                               rel=1e-6)
    assert figures["iw_nll"] == pytest.approx(nll / len(MOLECULES), rel=1e-6)
    assert figures["rate"] == pytest.approx(float(direct["kl"].mean()), rel=1e-5)
    # bits-back reaches the -ELBO, which bounds the importance-weighted NLL from above
    assert figures["bits_per_char"]["neg_elbo"] >= figures["bits_per_char"]["iw_nll"]
    assert figures["characters"] == chars and figures["k"] == 8
    assert 0 <= figures["active_units"] <= figures["latent_dim"] == 8


def test_compressor_sizes_are_the_bytes_that_decompress_to_the_strings() -> None:
    strings = MOLECULES * 20
    sizes = R.compressed_sizes(strings)
    whole = "".join(s + "\n" for s in strings).encode()
    decompress = {"gzip -9": gzip.decompress, "bz2 -9": bz2.decompress,
                  "xz -9": lzma.decompress}
    if R.zstd_available():
        import zstandard
        decompress["zstd -19"] = zstandard.ZstdDecompressor().decompress
    else:
        assert sizes["zstd -19"] is None
    for name, undo in decompress.items():
        packed = R.compress(name, whole)
        assert undo(packed) == whole
        assert sizes[name]["file"] == len(packed)
        assert sizes[name]["lines"] == sum(len(R.compress(name, (s + "\n").encode()))
                                           for s in strings)
        assert sizes[name]["file"] < len(whole) < sizes[name]["lines"]  # repeats pay off once
    with pytest.raises(ValueError, match="unknown compressor"):
        R.compress("brotli", whole)


def test_mig_is_one_for_a_copied_property_and_near_zero_for_noise() -> None:
    rng = np.random.default_rng(0)
    prop = rng.normal(size=(2000, 1))
    copied = np.c_[np.zeros(2000), prop, np.zeros((2000, 2))]
    found = R.disentanglement(copied, prop, ["p"])
    assert found["per_property"]["p"]["mig"] == pytest.approx(1.0)
    assert found["per_property"]["p"]["best_unit"] == 1
    assert found["per_property"]["p"]["best_unit_r2"] == pytest.approx(1.0)
    noise = R.disentanglement(rng.normal(size=(2000, 4)), prop, ["p"])
    assert noise["mig"] < 0.05 and noise["mean_best_unit_r2"] < 0.01


def test_r2_is_one_for_features_equal_to_the_target() -> None:
    rng = np.random.default_rng(1)
    target = rng.normal(size=(300, 1))
    splits = R.feature_splits(300, n_splits=2)
    assert all(len(a) == 240 and len(b) == 60 and not set(a) & set(b) for a, b in splits)
    scores = R.regression_scores(np.c_[target, rng.normal(size=(300, 3))], target, splits)
    assert min(min(s) for s in scores["ridge"]) > 0.999
    assert min(min(s) for s in scores["mlp"]) > 0.9
    noise = R.regression_scores(rng.normal(size=(300, 4)), target, splits)
    assert max(max(s) for s in noise["ridge"]) < 0.1


def test_curve_splits_share_one_test_set_and_nest_the_training_sets() -> None:
    splits = R.curve_splits(1000, (50, 200, 800), n_test=200, n_splits=3)
    test = np.arange(800, 1000)
    for size, per_split in splits.items():
        assert len(per_split) == 3
        for train, held in per_split:
            assert len(train) == size and len(set(train)) == size
            assert np.array_equal(held, test) and not set(train) & set(held)
    for s in range(3):  # a smaller set lies inside the larger of its draw
        assert set(splits[50][s][0]) <= set(splits[200][s][0]) <= set(splits[800][s][0])
    assert not np.array_equal(splits[50][0][0], splits[50][1][0])  # draws differ


def test_curve_section_judges_the_goal_from_the_numbers() -> None:
    def result(value: float) -> dict:
        return {reg: {t: {"mean": value, "std": 0.0} for t in R.PROPERTIES}
                for reg in ("ridge", "mlp")}
    record = {"sizes": [100, 1000], "n_test": 50, "n_splits": 1, "source": "made up",
              "shipped": {}, "variational": {"ECFP4": False, "code": True},
              "curve": {"ECFP4": {"100": result(0.5), "1000": result(0.8)},
                        "code": {"100": result(0.6), "1000": result(0.7)}}}
    text = "\n".join(R._curve_section(record))
    assert "- 100 labels: 4 of 4 properties" in text
    assert "- 1,000 labels: 0 of 4 properties" in text
    assert "met with 100 labels (100: the code on logP and QED and SA and TPSA) and not with 1,000" in text
    assert "ahead on 100 labels: logP, QED, SA, TPSA; 1,000 labels: no property" in text


def test_binary_features_stay_unscaled_so_a_rare_bit_does_not_explode() -> None:
    rng = np.random.default_rng(2)
    bits = (rng.random((300, 50)) < 0.02).astype(np.uint8)
    target = bits[:, :5].sum(1, keepdims=True) + 0.01 * rng.normal(size=(300, 1))
    scores = R.regression_scores(bits, target, R.feature_splits(300, n_splits=2))
    assert min(min(s) for s in scores["ridge"]) > 0.9


def test_path_smoothness_counts_valid_decodes_neighbours_and_distinct_molecules() -> None:
    still = ["CCO"] * 4
    moving = ["CCO", None, "CCN", "CCN"]
    figures = R.path_smoothness([still, moving])
    assert figures["valid"] == pytest.approx(7 / 8)
    # neighbours: three identical pairs, then CCN-CCN; the pairs around the invalid one drop out
    assert figures["neighbour_tanimoto"] == pytest.approx(1.0)
    assert figures["valid_neighbour_pairs"] == pytest.approx(4 / 6)
    assert figures["distinct"] == pytest.approx(1.5)


def test_interpolation_and_reconstruction_of_the_tiny_model(model) -> None:
    figures, paths = R.interpolation(model, MOLECULES, n_pairs=3, seed=0, steps=4)
    assert len(paths) == 3 and all(len(p) == 4 for p in paths)
    assert figures["paths"] == 3 and 0 <= figures["valid"] <= 1
    assert 1 <= figures["distinct"] <= 4 or figures["valid"] == 0
    recon = R.reconstruction(model, MOLECULES)
    assert recon["n"] == len(MOLECULES) and 0 <= recon["tanimoto"] <= 1
    assert recon["exact"] <= recon["valid"]


def test_hierarchical_row_is_built_or_skipped_with_its_reason(tmp_path) -> None:
    from seqvae.config import ModelConfig

    if "latent_levels" in ModelConfig.__dataclass_fields__:
        config = R.model_config("molecules", "hier", 1.0, 0, tmp_path)
        assert config.model.latent_levels == 2
    else:
        with pytest.raises(R.Skip, match="model.latent_levels"):
            R.model_config("molecules", "hier", 1.0, 0, tmp_path)
    beta = R.model_config("text", "beta4", 1.0, 0, tmp_path)
    assert (beta.train.kl_weight, beta.train.free_bits, beta.train.pretrain_steps) == (4.0, 0, 0)
    assert beta.train.kl_warmup_fraction == 0.3
    ae = R.model_config("molecules", "ae", 1.0, 0, tmp_path)
    assert not ae.model.variational and ae.train.max_minutes == 1.0
