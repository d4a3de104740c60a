"""The models that ship in seqvae/pretrained: each trained by one `seqvae train` command (the
molecular ones on the full MOSES training split, the sentence ones on the shipped Brown
training split) for a wall-clock budget, resumable across sittings, then exported.

    python -m benchmarks.shipped train smiles --minutes 150   # run again to continue a part
    python -m benchmarks.shipped export smiles                # -> seqvae/pretrained/moses-smiles
    python -m benchmarks.shipped train brown-vae --minutes 60 # -> seqvae/pretrained/brown-vae

`train` runs the model's command (SHIPPED below; `--resume` added when its run folder holds a
checkpoint, so a killed or time-limited sitting goes on where it stopped: the training clock
counts only training, summed over the parts) and appends what each sitting did (steps, the
1-minute load average while it ran, the machine) to runs/shipped/NAME/sittings.json. The run
keeps a snapshot of its weights every 10 training minutes for the FCD curve of
benchmarks/moses.py. `export` writes the float16 checkpoint folder with the command in its
config.json notes.

runs/ is a scratch folder that a fresh clone lacks, so after each sitting the run's record
(sittings.json, and once the budget is spent summary.json and log.csv) is also kept in
benchmarks/results/shipped/NAME/, where benchmarks/moses.py finds it when it evaluates the
exported model in another sitting.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, LoadMonitor, machine

ROOT = Path(__file__).resolve().parent.parent
RUNS = Path("runs") / "shipped"
RECORDS = RESULTS_DIR / "shipped"  # each run's record, kept where a clone has it
RECORD_FILES = ("sittings.json", "summary.json", "log.csv")
SNAPSHOT_MINUTES = 10
# (training data, validation data, the benchmark that evaluates the model) of the molecular
# parts: MOSES' training split and its validation molecules (never its test split)
MOSES_DATA = ("moses:train", "default:moses_valid", "benchmarks/results/moses.md "
              "(python -m benchmarks.moses --part {part})")
TEXT_DATA = ("default:brown_train", "default:brown_valid", "benchmarks/results/text_brown.md "
             "(python -m benchmarks.text_brown --part {part})")

# part -> (shipped name, config file, --set overrides on it)
SHIPPED: dict[str, tuple[str, str, list[str]]] = {
    # the default recipe (moses_smiles.toml: KL weight 1 over the first 30% of the budget, lr
    # 3e-3, batches of 128) with a GRU-512 decoder, a free-bits floor of 0.3 nats per latent
    # dimension (a latent that reconstructs: recipes.md, fast1fb0.3) and the learning rate
    # decayed by a cosine over the minutes
    # Retrained uncontended on an AVX-512 CPU (2026-12-01, fp32): 32,952 steps in 150 minutes
    # (2.3x the shipped model's 14,549), greedy whole-string reconstruction 29% of validation
    # molecules, but worse prior samples: 5,000 from N(0, I) 76.6% valid, FCD/Test 1.18 against
    # the shipped model's 86.8% and 0.67 (samplers_moses-smiles-retrain.md beside
    # samplers_moses-smiles.md); not shipped, kept in
    # benchmarks/results/shipped/moses-smiles-candidate-2026-12-01. More steps of this recipe
    # make the latent more informative and its prior samples worse.
    "smiles": ("moses-smiles", "seqvae/configs/moses_smiles.toml",
               ["model.decoder_hidden=512", "train.free_bits=0.3", "train.lr_schedule=cosine",
                "train.eval_every=1000"]),
    # a candidate for moses-smiles (issue 17): the same recipe with the default's free-bits
    # floor of 0.1 nats per latent dimension (6.4 nats in all, not 19.2): a decoder that leans
    # less on z, so that N(0, I) codes falling between the training molecules' posteriors
    # matter less, at the cost of reconstruction. Measured (2026-12-01, `train smiles-fb0.1
    # --minutes 130`, fp32, AVX-512, uncontended but for about three minutes): 27,915 steps, validation
    # -ELBO 23.85 (KL 6.7, against 30.04 and 19.05 for the floor of 0.3 at 150 minutes on the
    # same CPU), greedy whole-string reconstruction 1.2% (29%); 5,000 N(0, I) samples valid
    # 0.854, FCD/Valid 0.800, FCD/Test 0.699 (floor 0.3 on the same CPU: 0.766, 1.18 FCD/Test;
    # the shipped model, 14,549 contended AVX2 steps: 0.868, 0.783, 0.673), aggregate-4 0.855,
    # 0.783, 0.683 (samplers_moses-smiles-fb0.1.md). Far better than the floor of 0.3 at the
    # same budget, level with the shipped model, so not shipped; record, FCD curve and float16
    # export in benchmarks/results/shipped/moses-smiles-fb0.1. (The run's exit code 1: its
    # end-of-run sample picture failed on a source file edited under it; the training, its
    # checkpoint and its aggregate prior had finished.)
    "smiles-fb0.1": ("moses-smiles-fb0.1", "seqvae/configs/moses_smiles.toml",
                     ["model.decoder_hidden=512", "train.free_bits=0.1",
                      "train.lr_schedule=cosine", "train.eval_every=1000"]),
    # a candidate for moses-smiles (issue 17): the same recipe with a bidirectional GRU-128
    # encoder instead of GRU-256. At equal steps the 150-minute SMILES VAE's FCD curve follows
    # the language model's (moses.md); the gap at equal minutes is steps: with the GRU-256
    # encoder the VAE made 14,549 steps in 150 minutes to the language model's 25,517. Measured
    # (2026-12-01): 23,133 steps, but a validation -ELBO about 1 nat worse at equal minutes and
    # fewer valid samples; not shipped
    "smiles-enc128": ("moses-smiles-enc128", "seqvae/configs/moses_smiles.toml",
                      ["model.encoder_hidden=128", "model.decoder_hidden=512",
                       "train.free_bits=0.3", "train.lr_schedule=cosine",
                       "train.eval_every=1000"]),
    # a candidate for moses-smiles (issue 17): a VAE around the shipped language model's
    # decoder (train.init_decoder = moses-charrnn: its embedding and GRU-512, the weights
    # reading z starting at zero, a fresh encoder), the free-bits floor of 0.1 and a learning
    # rate of 1e-3 (a third of pre-training's) decayed by a cosine. Why: on 2,000 MOSES
    # validation molecules the language model's NLL is 20.4 nats and the VAEs' importance-
    # weighted NLL (k = 32) 22.3 (smiles-fb0.1) and 23.7 (shipped): their decoders are worse
    # density models, which the FCD gap follows; this VAE starts at the language model's NLL.
    # Measured (2026-12-01, `train smiles-lm --minutes 40`, fp32, AVX-512, uncontended): 8,648
    # steps, validation -ELBO 22.53 (KL 6.5; smiles-fb0.1 after 27,915 steps from scratch:
    # 23.85), IW-NLL 20.74 against the language model's 20.42 (density.md); 5,000 N(0, I)
    # samples valid 0.916, FCD/Test 0.481 (the language model at the same 5,000: 0.919, 0.416;
    # the shipped VAE 0.868, 0.673), aggregate-4 0.916, 0.462 (samplers_moses-smiles-lm.md);
    # greedy whole-string reconstruction 0.6%. Its budget is the language model's 150 minutes
    # and these 40; its peer at that budget is charrnn-190. Shipped as moses-smiles-lm beside
    # moses-smiles (whose latent, 18.9 nats of KL, the latent-space benchmarks use)
    "smiles-lm": ("moses-smiles-lm", "seqvae/configs/moses_smiles.toml",
                  ["train.init_decoder=moses-charrnn", "train.free_bits=0.1", "train.lr=1e-3",
                   "train.lr_schedule=cosine", "train.eval_every=1000"]),
    # the same warm start with the free-bits floor of 0.3 (19.2 nats): does a latent that
    # reconstructs keep the language model's density? Measured (2026-12-01, `train
    # smiles-lm-fb0.3 --minutes 40`, fp32, AVX-512): 8,788 steps, -ELBO 29.42 (KL 18.2), IW-NLL
    # 24.41 (density.md), greedy whole-string reconstruction 9.2%; 5,000 N(0, I) samples valid
    # 0.912, FCD/Test 0.594, aggregate-4 0.903, 0.514 (samplers_moses-smiles-lm-fb0.3.md):
    # better samples than the shipped VAE (0.868, 0.673), worse than the floor of 0.1 (0.916,
    # 0.481): no; the informative latent still costs sample quality
    "smiles-lm-fb0.3": ("moses-smiles-lm-fb0.3", "seqvae/configs/moses_smiles.toml",
                        ["train.init_decoder=moses-charrnn", "train.free_bits=0.3",
                         "train.lr=1e-3", "train.lr_schedule=cosine", "train.eval_every=1000"]),
    # the same warm start with the free-bits floor of 0.03 (1.9 nats), the other side of
    # smiles-lm's 0.1 from smiles-lm-fb0.3 (issue 17): every VAE around a language model's
    # decoder fills its floor and pays about its size over the language model's NLL, and
    # FCD/Test rose with the floor (0.1: 0.481, 0.3: 0.594 at 5,000 samples); how close to its
    # peer (charrnn-190) does a thinner latent come, and what does that latent still carry?
    "smiles-lm-fb0.03": ("moses-smiles-lm-fb0.03", "seqvae/configs/moses_smiles.toml",
                         ["train.init_decoder=moses-charrnn", "train.free_bits=0.03",
                          "train.lr=1e-3", "train.lr_schedule=cosine", "train.eval_every=1000"]),
    # the same recipe on SELFIES (moses_selfies.toml's model; its older KL settings replaced)
    "selfies": ("moses-selfies", "seqvae/configs/moses_selfies.toml",
                ["model.decoder_hidden=512", "train.batch_size=128", "train.lr=3e-3",
                 "train.kl_weight=1.0", "train.kl_warmup_fraction=0.3", "train.free_bits=0.3",
                 "train.lr_schedule=cosine", "train.eval_every=1000"]),
    # the SELFIES VAE around the SELFIES language model's decoder (selfies-charrnn, read from
    # its run folder), as smiles-lm is around moses-charrnn's: the same free-bits floor of 0.1,
    # lr 1e-3 decayed by a cosine, the selfies part's batches and KL warm-up (issue 17).
    # Measured (2026-12-02, `train selfies-lm --minutes 40`, fp32, AVX-512, uncontended): 7,626
    # steps, validation -ELBO 21.87 (KL 6.3); 30,000 samples x 3 seeds (`python -m
    # benchmarks.moses --part selfies-lm --strict`) from N(0, I): FCD/Test 1.537, and 0.488
    # with strict SELFIES (74.2% of draws kept; the language model 0.424, 77.1%), Filters
    # 0.971; from the aggregate prior 1.645 and 0.511. Shipped as moses-selfies-lm
    "selfies-lm": ("moses-selfies-lm", "seqvae/configs/moses_selfies.toml",
                   [f"train.init_decoder={RUNS / 'moses-selfies-charrnn'}", "train.batch_size=128",
                    "train.kl_weight=1.0", "train.kl_warmup_fraction=0.3", "train.free_bits=0.1",
                    "train.lr=1e-3", "train.lr_schedule=cosine", "train.eval_every=1000"]),
    # the conditional VAE (model.conditions) of benchmarks/conditional.py: smiles-lm's recipe
    # (a VAE around the shipped language model's decoder, free bits 0.1, lr 1e-3 decayed by a
    # cosine) conditioned on logP and QED; the decoder's weights reading [z, condition] start
    # at zero. Why not the SMILES VAE's recipe from scratch: its prior samples are 0.87 valid
    # after 150 minutes, the warm-started ones above 0.9 after 40, and the goal is
    # validity 0.9. Trained `--minutes 80` (40, then resumed to 80), so that its budget (the
    # language model's 150 minutes and these 80) is that of its peer, the shipped
    # moses-smiles-lm (150 + 40 + 40)
    "conditional": ("moses-conditional", "seqvae/configs/moses_smiles.toml",
                    ["train.init_decoder=moses-charrnn", "train.free_bits=0.1", "train.lr=1e-3",
                     "train.lr_schedule=cosine", "train.eval_every=1000",
                     "model.conditions=logp,qed"]),
    # the conditional VAE with the thinner latent of smiles-lm-fb0.03 (free bits 0.03, about
    # 2 nats): a code that says less about the molecule leaves more to the condition; does
    # the decoder then follow the requested logP / QED more closely at the same validity?
    "conditional-fb0.03": ("moses-conditional-fb0.03", "seqvae/configs/moses_smiles.toml",
                           ["train.init_decoder=moses-charrnn", "train.free_bits=0.03",
                            "train.lr=1e-3", "train.lr_schedule=cosine", "train.eval_every=1000",
                            "model.conditions=logp,qed"]),
    # the peer a VAE's prior samples must beat (MOSES's CharRNN class): the SMILES VAE's
    # decoder (GRU-512) as a plain language model, no encoder, no latent, the same schedule
    "charrnn": ("moses-charrnn", "seqvae/configs/moses_smiles.toml",
                ["model.use_latent=false", "model.decoder_hidden=512", "train.lr_schedule=cosine",
                 "train.eval_every=1000"]),
    # the language model's peer of smiles-lm at the same budget: moses-charrnn trained on for
    # the warm-started VAE's 40 minutes with its optimiser settings (train.init: the weights
    # of moses-charrnn, a fresh optimiser, lr 1e-3 decayed by a cosine), so that the VAE's 150 +
    # 40 minutes meet a language model's 150 + 40 on the same CPU (issue 17). Measured
    # (2026-12-01, fp32, AVX-512): 13,032 steps, validation NLL 20.09; 30,000 samples x 3
    # seeds valid 0.933, FCD/Test 0.182 (moses.md), against smiles-lm's 0.919, 0.247 (N(0, I))
    # and 0.916, 0.229 (aggregate prior). Not shipped: the benchmark's peer only
    "charrnn-190": ("moses-charrnn-190", "seqvae/configs/moses_smiles.toml",
                    ["model.use_latent=false", "model.decoder_hidden=512",
                     "train.init=moses-charrnn", "train.lr=1e-3", "train.lr_schedule=cosine",
                     "train.eval_every=1000"]),
    # the SELFIES peer of charrnn (issue 17): the SELFIES VAE's decoder (GRU-512, batches of
    # 128) as a language model, no latent, on the same 150-minute cosine budget: how close
    # SELFIES strings get to MOSES without a latent, and the decoder a SELFIES VAE can start
    # from (train.init_decoder), as smiles-lm did on SMILES. At lr 3e-3 (the SMILES LM's rate)
    # it was unstable (2026-12-01, fp32, AVX-512, 22,640 steps in 66 minutes: validation NLL
    # lowest at step 8,000, 24.74 nats, then rising with the training loss to 28.59 at 22,640
    # while the rate was still above 2e-3; that record is in git history), so it trains at 1e-3.
    # Measured at 1e-3 (2026-12-01/02, two sittings, fp32, AVX-512, uncontended): 46,925 steps,
    # validation NLL 19.74 nats per molecule (moses-charrnn: 20.42 on 2,000 of the same
    # molecules, density.md); 30,000 samples x 3 seeds valid 1.000, FCD/Test 1.282, Filters
    # 0.905 (moses.md; moses-charrnn 0.920, 0.195): a lower NLL than the SMILES LM's and far
    # worse samples. Not shipped: the benchmark's peer and selfies-lm's decoder
    "selfies-charrnn": ("moses-selfies-charrnn", "seqvae/configs/moses_selfies.toml",
                        ["model.use_latent=false", "model.decoder_hidden=512",
                         "train.batch_size=128", "train.lr=1e-3", "train.lr_schedule=cosine",
                         "train.eval_every=1000"]),
    # the SELFIES language model's peer of selfies-lm at the same budget, as charrnn-190 is
    # smiles-lm's: selfies-charrnn trained on for the VAE's 40 minutes with its optimiser
    # settings (train.init: its weights, a fresh optimiser, lr 1e-3 decayed by a cosine), so
    # that the VAE's 150 + 40 minutes meet a language model's 150 + 40. Not trained yet
    "selfies-charrnn-190": ("moses-selfies-charrnn-190", "seqvae/configs/moses_selfies.toml",
                            ["model.use_latent=false", "model.decoder_hidden=512",
                             f"train.init={RUNS / 'moses-selfies-charrnn'}",
                             "train.batch_size=128", "train.lr=1e-3", "train.lr_schedule=cosine",
                             "train.eval_every=1000"]),
    # the SMILES language model at the rate that served SELFIES (issue 17): charrnn's recipe
    # (GRU-512, batches of 128, 150 minutes, cosine) at lr 1e-3 instead of moses_smiles.toml's
    # 3e-3. Why: at 3e-3 the SELFIES language model was unstable and at 1e-3 it reached 19.74
    # nats, below moses-charrnn's 20.42 on the same validation molecules; moses-charrnn
    # trained on at 1e-3 for 40 minutes (charrnn-190) went from 20.97 at its first validation
    # (step 1,000) to 20.09, and from 0.920 to 0.933 valid. Measured: 47,400 steps, validation
    # NLL 18.62; 30,000 samples (seed 0) 0.962 valid, FCD/Test 0.101 (moses_charrnn-lr1e-3.json)
    "charrnn-lr1e-3": ("moses-charrnn-lr1e-3", "seqvae/configs/moses_smiles.toml",
                       ["model.use_latent=false", "model.decoder_hidden=512", "train.lr=1e-3",
                        "train.lr_schedule=cosine", "train.eval_every=1000"]),
    # smiles-lm's recipe around that language model's decoder (read from its run folder):
    # 7,561 steps in 40 minutes, -ELBO 20.89, KL 6.4; 30,000 samples (seed 0) from N(0, I)
    # 0.959 valid, FCD/Test 0.181, Filters 0.992 (moses_smiles-lm-lr1e-3.json). Shipped as
    # moses-smiles-lm (`python -m benchmarks.shipped export smiles-lm-lr1e-3 --as
    # moses-smiles-lm`), replacing smiles-lm's
    "smiles-lm-lr1e-3": ("moses-smiles-lm-lr1e-3", "seqvae/configs/moses_smiles.toml",
                         [f"train.init_decoder={RUNS / 'moses-charrnn-lr1e-3'}",
                          "train.free_bits=0.1", "train.lr=1e-3", "train.lr_schedule=cosine",
                          "train.eval_every=1000"]),
    # smiles-lm-lr1e-3 at a third of its learning rate (issue 17). Why: its validation -ELBO
    # (20.89, KL 6.4) sits 2.3 nats above the language model it starts from (NLL 18.62), and
    # its samples' FCD/Test (0.178) above the language model's (0.101) from N(0, I) and from
    # the aggregate prior alike (0.168): the decoder lost density, not only the prior its
    # codes come from. The language model ended its cosine at a rate near zero; restarting
    # at 1e-3 moves the decoder off its optimum while the fresh encoder learns. Measured
    # (2026-12-02, `train smiles-lm-lr3e-4 --minutes 40`, fp32, AVX-512, uncontended): 7,953
    # steps, validation -ELBO 21.21 (KL 6.3) against 20.89 at 1e-3: lower from the first
    # validation (22.44 against 24.07 at step 1,000), higher from step 5,000 on; no
    "smiles-lm-lr3e-4": ("moses-smiles-lm-lr3e-4", "seqvae/configs/moses_smiles.toml",
                         [f"train.init_decoder={RUNS / 'moses-charrnn-lr1e-3'}",
                          "train.free_bits=0.1", "train.lr=3e-4", "train.lr_schedule=cosine",
                          "train.eval_every=1000"]),
    # smiles-lm-lr1e-3 with the KL weight at 1 from the first step (kl_schedule = constant)
    # instead of warmed up over the first 30% of the budget (issue 17). Why: the warm-up
    # exists so that a fresh decoder learns to read z before the KL term bites; this decoder
    # starts as a language model, and while the weight is low the encoder is free to carry
    # more than the free-bits floor: smiles-lm-lr1e-3 held 9.6 nats of KL at step 1,000 and
    # 6.4 at the end, its decoder taught to lean on z more than the prior's codes can feed
    # it. Measured (2026-12-02, `train smiles-lm-kl1 --minutes 40`, fp32, AVX-512,
    # uncontended): 7,735 steps, validation -ELBO 20.97 (KL 6.4) against 20.89 with the
    # warm-up; at step 1,000 22.64 against 24.07, KL 5.9: the encoder fills the free-bits floor
    # within the first 2,000 steps either way, so the floor, not the warm-up, sets how much
    # the decoder leans on z; 30,000 samples, seed 0 (`python -m benchmarks.moses --part
    # smiles-lm-kl1 --seeds 0`): N(0, I) valid 0.960, FCD/Test 0.248, aggregate 0.957, 0.209
    # (smiles-lm-lr1e-3, seed 0: 0.959, 0.181): no
    "smiles-lm-kl1": ("moses-smiles-lm-kl1", "seqvae/configs/moses_smiles.toml",
                      [f"train.init_decoder={RUNS / 'moses-charrnn-lr1e-3'}",
                       "train.free_bits=0.1", "train.kl_schedule=constant", "train.lr=1e-3",
                       "train.lr_schedule=cosine", "train.eval_every=1000"]),
    # the shipped moses-smiles-lm (smiles-lm-lr1e-3) trained on with the free-bits floor of
    # 0.03 (issue 17). Why: around moses-charrnn's decoder the floor of 0.03 (smiles-lm-fb0.03)
    # brought N(0, I) samples to FCD/Test 0.196 (seed 0) against 0.247 at 0.1, 1.07x its own
    # language model's peer (charrnn-190, 0.182); the lr 1e-3 language model's run is gone, so
    # this starts from the whole shipped VAE (train.init: encoder and decoder), KL weight 1
    # from the first step (its encoder already spends the floor of 0.1), lr 1e-3 cosine.
    # Measured (2026-12-02, `train smiles-lm-lr1e-3-fb0.03 --minutes 40`, fp32, Intel Xeon
    # AVX-512, uncontended): 10,958 steps, validation -ELBO 19.15 (KL 2.1; the language model's
    # NLL 18.62; moses-smiles-lm 20.89); 30,000 samples, seeds 0-2 (`python -m benchmarks.moses
    # --part smiles-lm-lr1e-3-fb0.03`): N(0, I) valid 0.955, FCD/Test 0.106 against the language
    # model's 0.101 (seed 0): within 10%. What its latent still carries: latent_use.md. Shipped
    # as moses-smiles-lm (`python -m benchmarks.shipped export smiles-lm-lr1e-3-fb0.03 --as
    # moses-smiles-lm`), replacing smiles-lm-lr1e-3's
    "smiles-lm-lr1e-3-fb0.03": ("moses-smiles-lm-lr1e-3-fb0.03",
                                "seqvae/configs/moses_smiles.toml",
                                ["train.init=moses-smiles-lm", "train.free_bits=0.03",
                                 "train.kl_schedule=constant", "train.lr=1e-3",
                                 "train.lr_schedule=cosine", "train.eval_every=1000"]),
    # smiles-lm-lr1e-3-fb0.03's 40 minutes in bf16 (the extra row issue 17 asks for where the
    # CPU has bf16), from the same weights: the moses-smiles-lm shipped before it, restored
    # from the history (`for f in config.json model.safetensors prior.json prior.safetensors
    # tokenizer.json; do git show 646e53d:seqvae/pretrained/moses-smiles-lm/$f >
    # runs/sources/moses-smiles-lm-fb0.1/$f; done`; SHA-256 of its weights dfeab685..., as the
    # fp32 run's summary records)
    "smiles-lm-lr1e-3-fb0.03-bf16": ("moses-smiles-lm-lr1e-3-fb0.03-bf16",
                                     "seqvae/configs/moses_smiles.toml",
                                     ["train.init=runs/sources/moses-smiles-lm-fb0.1",
                                      "train.free_bits=0.03", "train.kl_schedule=constant",
                                      "train.lr=1e-3", "train.lr_schedule=cosine",
                                      "train.eval_every=1000", "train.precision=bf16"]),
    # the SMILES language model's peer of smiles-lm-lr1e-3 at the same budget, as charrnn-190
    # is smiles-lm's: charrnn-lr1e-3 trained on for the VAE's 40 minutes (train.init: its
    # weights, a fresh optimiser, lr 1e-3 decayed by a cosine). Measured (2026-12-02, fp32,
    # AVX-512, uncontended): 13,376 steps, validation NLL 18.63 (18.62 at the start): the
    # restart at 1e-3 raised it to 19.58 at step 1,000 and the cosine brought it back, no lower
    "charrnn-lr1e-3-190": ("moses-charrnn-lr1e-3-190", "seqvae/configs/moses_smiles.toml",
                           ["model.use_latent=false", "model.decoder_hidden=512",
                            f"train.init={RUNS / 'moses-charrnn-lr1e-3'}", "train.lr=1e-3",
                            "train.lr_schedule=cosine", "train.eval_every=1000"]),
    # sentences (issue 22): the Brown LSTM VAE and its language-model baseline, as their
    # configs say: the BN-VAE lever of benchmarks/text_brown.py (the one that kept the most of
    # the sentence, reconstruction BLEU-4 5.5, at 1.033 x the LM's NLL in 20 minutes) with
    # schedules as shares of the budget and LSTM-448 decoders, so each ships under 20 MB
    "brown-vae": ("brown-vae", "seqvae/configs/brown_lstm_vae.toml", []),
    "brown-lm": ("brown-lm", "seqvae/configs/brown_lstm_lm.toml", []),
}
DATA: dict[str, tuple[str, str, str]] = {part: TEXT_DATA if part.startswith("brown")
                                         else MOSES_DATA for part in SHIPPED}


def command(part: str, minutes: float) -> list[str]:
    """The `seqvae train` command of a part (without --resume). Every part trains in fp32,
    the precision of most users' CPUs (precision = auto would pick bf16 on a CPU with AVX-512
    BF16, and the shipped models and their peers would no longer be like for like), unless it
    names its precision (a bf16 row beside an fp32 one)."""
    name, config, sets = SHIPPED[part]
    train_data, valid_data, _ = DATA[part]
    precision = [] if any(s.startswith("train.precision=") for s in sets) else [
        "train.precision=fp32"]
    return ["seqvae", "train", config, "--out", str(RUNS / name), "--max-minutes", f"{minutes:g}",
            "--train-data", train_data, "--valid-data", valid_data, "--no-progress",
            *[x for s in [*sets, f"train.snapshot_every_minutes={SNAPSHOT_MINUTES}", *precision]
              for x in ("--set", s)]]


def train(part: str, minutes: float) -> None:
    """One sitting of a part's training: from scratch, or resumed from its checkpoint."""
    name = SHIPPED[part][0]
    out = ROOT / RUNS / name
    cmd = command(part, minutes)
    resume = (out / "checkpoint").is_dir()
    exe = shutil.which("seqvae") or sys.exit("seqvae is not installed (pip install -e .)")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    before = _summary(out) if resume else {}
    print(" ".join(cmd) + (" --resume" if resume else ""), flush=True)
    with LoadMonitor(every=30.0) as load:
        t0 = time.perf_counter()
        code = subprocess.call([exe, *cmd[1:], *(["--resume"] if resume else [])], cwd=ROOT)
        seconds = time.perf_counter() - t0
    if not out.is_dir():  # the training failed before it wrote anything: nothing to record
        sys.exit(f"seqvae train exited with code {code} before writing {out}")
    after = _summary(out)
    sitting = {"started": started, "wall_seconds": round(seconds, 1), "exit_code": code,
               "resumed": resume, "steps_from": before.get("step", 0), "steps_to": after.get("step"),
               "train_seconds_to": after.get("elapsed_s"), "load_average": load.summary(),
               "machine": machine()}
    path = out / "sittings.json"
    sittings = json.loads(path.read_text())["sittings"] if path.is_file() else []
    path.write_text(json.dumps({"command": " ".join(cmd), "sittings": sittings + [sitting]},
                               indent=2) + "\n")
    keep_record(out, name)
    if code:
        sys.exit(code)


def keep_record(out: Path, name: str) -> Path:
    """Copy a run's record files (those it has yet) to benchmarks/results/shipped/NAME."""
    record = RECORDS / name
    record.mkdir(parents=True, exist_ok=True)
    for file in RECORD_FILES:
        if (out / file).is_file():
            shutil.copyfile(out / file, record / file)
    return record


def export(part: str, shipped_as: str | None = None) -> Path:
    """The finished run as seqvae/pretrained/NAME (float16 weights, no trainer state), its
    command and sittings in config.json's notes; ``shipped_as`` ships it under another name
    (a candidate replacing a shipped model: smiles-lm-lr1e-3 as moses-smiles-lm)."""
    from seqvae.checkpoint import export_checkpoint

    name = SHIPPED[part][0]
    out = ROOT / RUNS / name
    summary = out / "summary.json"
    if not summary.is_file():
        sys.exit(f"{out} has not finished: run `python -m benchmarks.shipped train {part}` first")
    done = json.loads(summary.read_text())
    keep_record(out, name)
    record = json.loads((out / "sittings.json").read_text())
    sittings = record["sittings"]
    notes = {"trained_by": (
        f"{record['command']} (`python -m benchmarks.shipped train {part}`, resumed "
        f"{len(sittings) - 1} time(s)): {done['step']:,} steps, {done['elapsed_s'] / 60:.0f} "
        f"training minutes ({done['precision']}) on {sittings[-1]['machine'].get('cpu')} with "
        f"{sittings[-1]['machine'].get('torch_threads')} threads, training data "
        f"{DATA[part][0]}; evaluated in {DATA[part][2].format(part=part)}"), "sittings": [{k: v for k, v in s.items() if k != "machine"}
                                   for s in sittings]}
    destination = ROOT / "seqvae" / "pretrained" / (shipped_as or name)
    if destination.exists():
        shutil.rmtree(destination)
    path = export_checkpoint(out / "checkpoint", destination, half=True, notes=notes)
    size = sum(f.stat().st_size for f in path.iterdir())
    print(f"exported {out} to {path} ({size / 1e6:.2f} MB)")
    if size >= 20_000_000:
        sys.exit(f"{path} is {size / 1e6:.2f} MB: shipped models stay under 20 MB")
    return path


def _summary(out: Path) -> dict[str, Any]:
    """The run's step and training seconds, from its checkpoint's trainer state."""
    state = out / "checkpoint" / "trainer_state.json"
    if not state.is_file():
        return {}
    counters = json.loads(state.read_text())["trainer"]
    return {"step": counters["step"], "elapsed_s": round(counters["elapsed_s"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=["train", "export"])
    parser.add_argument("part", choices=list(SHIPPED))
    parser.add_argument("--minutes", type=float, default=150)
    parser.add_argument("--as", dest="shipped_as", metavar="NAME",
                        help="export: ship under this name (default: the part's run name)")
    args = parser.parse_args()
    if args.stage == "train":
        train(args.part, args.minutes)
    else:
        export(args.part, args.shipped_as)


if __name__ == "__main__":
    main()
