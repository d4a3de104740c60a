"""Reinforcement learning on a model's decoder: REINVENT's policy update on seqvae's
autoregressive decoder, spending the same oracle budget as every other optimiser.

REINVENT (Olivecrona, Blaschke, Engkvist & Chen, J. Cheminform. 2017; REINVENT 2.0, Blaschke
et al., J. Chem. Inf. Model. 2020) fine-tunes a pretrained SMILES generator, the *agent*, so that
its log-likelihood of each sampled molecule approaches the *augmented likelihood*

    log P_aug(S) = log P_prior(S) + sigma * score(S),

the prior being the frozen pretrained generator: the loss is (log P_aug - log P_agent)^2 per
sequence. Molecules that score well become likelier; the prior keeps the agent near the
chemistry it learnt. Here the agent is a copy of a seqvae model's decoder (with its embedding);
a sequence's likelihood is the decoder's given the code z it was sampled with (a language model,
``model.use_latent = false``, ignores z: then this is REINVENT itself). What follows REINVENT's
implementation as PMO ran it (wenhao-gao/mol_opt, ``reinvent``), with its tuned settings as the
defaults: batches of 64, sigma 500, Adam at 5e-4, experience replay of 24 sequences drawn from a
memory of the 100 best (with probability proportional to their scores), and REINVENT's
regulariser 5e3 * mean(-1 / log P_agent) over the batch's own sequences against collapse onto a few short, likely strings.
Duplicate strings within a batch are trained on once.

The diversity filter (REINVENT 2.0's "identical Murcko scaffold" memory) is an option: once
``diversity_bucket`` molecules of one Bemis-Murcko scaffold scoring at least
``diversity_min_score`` have been rewarded, further molecules of that scaffold earn a reward of
0 (the oracle still records their true score). Codes: z is drawn from N(0, I) for every sequence
(``start="prior"``), or around starting codes (``start="best"`` hands over from another
optimiser: the codes of the best molecules found so far; a list of SMILES: their codes) with
``z_sigma`` noise. With ``seed_memory`` (the default) the replay memory starts with the best
molecules the search has already scored, so a hand-over passes on molecules as well as codes.
The run stops when the budget is spent, or after ``patience`` batches in a row
that spend no call (the agent keeps writing molecules it has already scored).

``augment_rounds`` (0: off) adds Augmented Memory (Guo & Schwaller, "Augmented Memory:
Sample-Efficient Generative Molecular Design with Reinforcement Learning", JACS Au 2024): after
each step's update, that many further updates on the batch's molecules and the whole replay
memory, each molecule written as a random SMILES of itself (RDKit's, seeded by the run), so the
expensive oracle calls are learnt from several times without the agent collapsing onto one
string. Its "selective memory purge" is the diversity filter's: with ``diversity_bucket``, a
molecule whose scaffold has had its share is dropped from the memory as well as unrewarded. The
random forms are used for SMILES models; a SELFIES model gets the SELFIES of the random SMILES,
and a molecule whose random form the vocabulary cannot write keeps its stored form.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from seqvae.losses import sequence_nll


@dataclass
class _Memory:
    """The best sequences seen (each once), for experience replay."""

    size: int
    items: dict[str, tuple[float, torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def add(self, smiles: list[str], scores: np.ndarray, tokens: torch.Tensor,
            z: torch.Tensor) -> None:
        for i, key in enumerate(smiles):
            if scores[i] > 0 and key not in self.items:
                self.items[key] = (float(scores[i]), tokens[i].clone(), z[i].clone())
        if len(self.items) > self.size:
            kept = sorted(self.items.items(), key=lambda kv: -kv[1][0])[:self.size]
            self.items = dict(kept)

    def purge(self, drop: Any) -> None:
        """Forget the sequences whose key ``drop`` says to."""
        self.items = {k: v for k, v in self.items.items() if not drop(k)}

    def sample(self, n: int, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        if n <= 0 or len(self.items) < n:
            return None
        values = list(self.items.values())
        weights = torch.tensor([v[0] for v in values], dtype=torch.float64)
        chosen = torch.multinomial(weights / weights.sum(), n, replacement=False,
                                   generator=generator).tolist()
        scores = torch.tensor([values[i][0] for i in chosen], dtype=torch.float32)
        return scores, _pad([values[i][1] for i in chosen]), torch.stack(
            [values[i][2] for i in chosen])


def _pad(rows: list[torch.Tensor], pad_id: int = 0) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


class _ScaffoldFilter:
    """REINVENT 2.0's identical-Murcko-scaffold diversity filter on the rewards."""

    def __init__(self, bucket: int, min_score: float):
        self.bucket, self.min_score = bucket, min_score
        self.counts: dict[str, int] = {}
        self.scaffolds: dict[str, str | None] = {}

    def scaffold(self, smiles: str) -> str | None:
        from seqvae.chem import murcko_scaffold

        if smiles not in self.scaffolds:
            self.scaffolds[smiles] = murcko_scaffold(smiles) if smiles else None
        return self.scaffolds[smiles]

    def full(self, smiles: str) -> bool:
        """Whether the molecule's scaffold has had its bucket of rewards."""
        scaffold = self.scaffold(smiles)
        return scaffold is not None and self.counts.get(scaffold, 0) >= self.bucket

    def __call__(self, smiles: list[str], rewards: np.ndarray) -> np.ndarray:
        out = rewards.copy()
        for i, text in enumerate(smiles):
            if rewards[i] < self.min_score:
                continue
            scaffold = self.scaffold(text)
            if scaffold is None:
                continue
            seen = self.counts.get(scaffold, 0)
            if seen >= self.bucket:
                out[i] = 0.0
            else:
                self.counts[scaffold] = seen + 1
        return out


def reinvent(search: Any, budget: int, run: int, generator: torch.Generator, start: Any,
             seed_smiles: str | None, batch_size: int = 64, sigma: float = 500.0,
             lr: float = 5e-4, replay: int = 24, memory: int = 100,
             regulariser: float = 5e3, diversity_bucket: int = 0,
             diversity_min_score: float = 0.4, z_sigma: float = 0.5, patience: int = 50,
             seed_memory: bool = True, augment_rounds: int = 0,
             max_steps: int = 100_000) -> dict[str, Any]:
    """Train a copy of the search's decoder by REINVENT's update until ``budget`` oracle calls
    of the search are spent; see the module's documentation. Returns what the run did."""
    vae = search.vae
    prior = vae.model
    prior.eval()
    agent = copy.deepcopy(prior)
    agent.eval()  # no dropout: the agent's likelihoods are the ones it samples with
    for p in agent.parameters():
        p.requires_grad_(False)
    trained = [*agent.embedding.parameters(), *agent.decoder.parameters()]
    for p in trained:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(trained, lr=lr)
    cfg = prior.config
    device = prior.device
    dim = vae.latent_dim
    prior_start = isinstance(start, str) and start == "prior" and seed_smiles is None
    centres = None if prior_start else search.start_codes(start, batch_size, generator,
                                                          seed_smiles)
    store = _Memory(memory)
    seeded = _seed_memory(store, search, cfg.bos_id, cfg.pad_id) if seed_memory else 0
    diversity = _ScaffoldFilter(diversity_bucket, diversity_min_score) if diversity_bucket else None
    bar = search._bar(budget, "reinvent")
    idle = steps = augmented_updates = 0

    def update(tokens: torch.Tensor, z: torch.Tensor, rewards_t: torch.Tensor,
               fresh: int) -> None:
        """One step of REINVENT's loss on these sequences (the first ``fresh`` the batch's
        own, which the regulariser reads)."""
        full = torch.cat([torch.full((len(tokens), 1), cfg.bos_id, dtype=torch.long), tokens],
                         dim=1).to(device)
        inputs, targets = full[:, :-1], full[:, 1:]
        z = z.to(device)
        with torch.no_grad():
            prior_ll = -sequence_nll(prior.teacher_forced_logits(inputs, prior.code(z)),
                                     targets, cfg.pad_id)
        agent_ll = -sequence_nll(agent.teacher_forced_logits(inputs, agent.code(z)),
                                 targets, cfg.pad_id)
        augmented = prior_ll + sigma * rewards_t.to(device)
        loss = (augmented - agent_ll).pow(2).mean()
        if regulariser:
            # on the batch's own sequences, as REINVENT's implementation applies it
            loss = loss + regulariser * (-1.0 / agent_ll[:fresh].clamp(max=-1e-6)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    stopped = "budget spent"
    for step in range(max_steps):
        if search.oracle.calls >= budget:
            break
        z = (search.vae.model.sample_prior(batch_size, generator) if centres is None else
             centres + z_sigma * torch.randn(batch_size, dim, generator=generator))
        z = z.to(device)
        with torch.no_grad():
            out = agent.generate(z, generator=generator)
        rows = [row[:int((row != cfg.pad_id).sum())] for row in out.tokens.cpu()]
        strings = [vae.tokenizer.from_model_string(s)
                   for s in vae.tokenizer.decode_batch(out.tokens.cpu())]
        first = list({tuple(r.tolist()): i for i, r in reversed(list(enumerate(rows)))}.values())
        first.sort()
        tokens = _pad([rows[i] for i in first], cfg.pad_id)
        z, strings = z[first], [strings[i] for i in first]
        before = search.oracle.calls
        values = search.oracle.score(strings, z.cpu().numpy(), "reinvent", run, step, budget)
        bar.update(search.oracle.calls - before)
        idle = 0 if search.oracle.calls > before else idle + 1
        scored = ~np.isnan(values)  # NaN: not scored, the budget ran out
        rewards = np.where(np.isfinite(values), values, 0.0)
        keys = [k or "" for k in search.oracle.last_keys]
        if diversity is not None:
            rewards = diversity(keys, rewards)
        keep = torch.as_tensor(scored.nonzero()[0])
        if len(keep) == 0:
            break
        tokens, z, rewards_t = tokens[keep], z[keep], torch.as_tensor(rewards[keep.numpy()],
                                                                      dtype=torch.float32)
        fresh = len(tokens)  # the batch's own sequences come first, then the replayed ones
        own_tokens, own_z = tokens, z.cpu()
        replayed = store.sample(replay, generator)
        store.add([keys[i] for i in keep.tolist()], rewards[keep.numpy()], tokens, z.cpu())
        if replayed is not None:
            r_scores, r_tokens, r_z = replayed
            width = max(tokens.size(1), r_tokens.size(1))
            tokens = torch.cat([_widen(tokens, width, cfg.pad_id),
                                _widen(r_tokens, width, cfg.pad_id)])
            z = torch.cat([z, r_z.to(device)])
            rewards_t = torch.cat([rewards_t, r_scores])
        update(tokens, z, rewards_t, fresh)
        if augment_rounds:
            if diversity is not None:  # the selective memory purge
                store.purge(diversity.full)
            batch = ([keys[i] for i in keep.tolist()], rewards[keep.numpy()], own_tokens,
                     own_z)
            for r in range(augment_rounds):
                update(*_randomised(store, batch, vae.tokenizer, cfg, run, step, r), fresh)
                augmented_updates += 1
        steps = step + 1
        if idle >= patience:
            stopped = f"{patience} batches in a row spent no call"
            break
    bar.close()
    return {"steps": steps, "stopped": stopped if search.oracle.calls < budget else "budget spent",
            "calls": search.oracle.calls, "memory": len(store.items), "seeded": seeded,
            "augmented_updates": augmented_updates,
            "scaffolds": len(diversity.counts) if diversity is not None else None}


def _seed_memory(store: _Memory, search: Any, bos_id: int, pad_id: int) -> int:
    """Fill the replay memory with the best molecules the search has already scored (another
    optimiser's, or an earlier run's), each with the code it was found at: the agent starts by
    replaying them."""
    found = sorted((e for e in search.oracle.entries.values() if e.score.ok and e.score.value > 0),
                   key=lambda e: -e.score.value)[:store.size]
    encoded = search.vae._encode_all([e.smiles for e in found])
    kept = [(e, ids) for e, (ids, why) in zip(found, encoded) if why is None]
    if not kept:
        return 0
    tokens = [torch.tensor(ids[1:] if ids[0] == bos_id else ids) for _, ids in kept]
    store.add([e.smiles for e, _ in kept], np.array([e.score.value for e, _ in kept]),
              _pad(tokens, pad_id), torch.as_tensor(np.stack([e.z for e, _ in kept])))
    return len(store.items)


def _randomised(store: _Memory, batch: tuple[list[str], np.ndarray, torch.Tensor, torch.Tensor],
                tokenizer: Any, cfg: Any, run: int, step: int, round_: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augmented Memory's training set for one round: the batch's molecules (first) and every
    molecule of the memory, each as a random SMILES of itself (its stored tokens where it has
    none the model can write), with its code and reward."""
    from seqvae.chem import random_smiles

    keys, rewards, tokens, z = batch
    rows = [tokens[i][tokens[i] != cfg.pad_id] for i in range(len(keys))]
    keys, rewards, codes = list(keys), list(map(float, rewards)), list(z)
    for key, (score, stored, code) in store.items.items():
        keys.append(key)
        rewards.append(score)
        rows.append(stored[stored != cfg.pad_id])
        codes.append(code)
    out = []
    for i, (key, stored) in enumerate(zip(keys, rows)):
        seed = (((run * 1_000_003 + step) * 31 + round_) * 4_099 + i) % (2 ** 31 - 2) + 1
        text = random_smiles(key, seed) if key else None
        ids = None
        if text is not None:
            try:
                ids = tokenizer.encode(tokenizer.to_model_string(text))
            except Exception:  # a SELFIES conversion that fails: the stored form
                ids = None
        if ids is None or tokenizer.unk_id in ids or len(ids) > cfg.max_length:
            out.append(stored)
        else:
            out.append(torch.tensor(ids[1:] if ids[0] == cfg.bos_id else ids))
    return (_pad(out, cfg.pad_id), torch.stack(codes),
            torch.tensor(rewards, dtype=torch.float32))


def _widen(tokens: torch.Tensor, width: int, pad_id: int) -> torch.Tensor:
    if tokens.size(1) >= width:
        return tokens
    pad = torch.full((len(tokens), width - tokens.size(1)), pad_id, dtype=torch.long)
    return torch.cat([tokens, pad], dim=1)
