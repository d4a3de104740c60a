"""model.selfies_counter: the SELFIES derivation counts a decoder reads beside each token."""

import gzip
from pathlib import Path

import pytest
import torch
from rdkit import Chem

from seqvae.chem import selfies_to_smiles, smiles_to_selfies
from seqvae.config import ModelConfig, load_config
from seqvae.errors import ConfigError
from seqvae.model import SequenceVAE, grow_vocabulary
from seqvae.model.counter import ROLE_ATOM, ROLE_OTHER, DerivationCounter, selfies_role, selfies_roles
from seqvae.tokenizers import SelfiesTokenizer

ROOT = Path(__file__).resolve().parent.parent


def moses_selfies(n: int) -> list[str]:
    with gzip.open(ROOT / "data" / "moses_train.csv.gz", "rt") as fh:
        smiles = [line.split(",")[0] for line in fh.read().splitlines()[1:n + 1]]
    return [smiles_to_selfies(s) for s in smiles]


@pytest.fixture(scope="module")
def tokenizer():
    return SelfiesTokenizer.build(moses_selfies(2000))


def test_roles_of_symbols():
    assert selfies_role("[Ring1]") == -1
    assert selfies_role("[=Ring2]") == -2
    assert selfies_role("[-/Ring1]") == -1
    assert selfies_role("[#Branch3]") == -3
    assert selfies_role("[Branch1]") == -1
    for atom in ("[C]", "[=O]", "[NH1]", "[H]", "[C@@H1]", "[N+1]"):
        assert selfies_role(atom) == ROLE_ATOM
    for other in ("[nop]", "<pad>", "<bos>", "<eos>", "<unk>"):
        assert selfies_role(other) == ROLE_OTHER


def states(tokenizer, selfies: str) -> list[tuple[int, int]]:
    """(atoms, indices due) after each token of BOS + the string."""
    counter = DerivationCounter(selfies_roles(list(tokenizer.vocab)), 100, 4)
    ids = torch.tensor([tokenizer.encode(selfies)[:-1]])  # BOS and the symbols, no EOS
    state = counter.start(1, ids.device)
    out = []
    for t in range(ids.size(1)):
        state = counter.advance(state, ids[:, t])
        out.append((int(state[0]), int(state[1])))
    return out


def test_counts_by_hand(tokenizer):
    # acetamide's ring-free start, then a 3-ring closed by [Ring1][Ring1] (index value 1)
    s = "[C][C][=Branch1][C][=O][N][C][C][Ring1][Ring1]"
    assert states(tokenizer, s) == [
        (0, 0),  # <bos>
        (1, 0), (2, 0),
        (2, 1),  # [=Branch1]: one index symbol due
        (2, 0),  # [C] read as that index: no atom
        (3, 0), (4, 0), (5, 0), (6, 0),
        (6, 1),  # [Ring1]
        (6, 0),  # [Ring1] read as the index
    ]


def test_final_count_is_the_molecules_atom_count(tokenizer):
    """Checked against RDKit on real molecules: every SELFIES symbol outside the index
    positions derives one atom of the decoded molecule (MOSES writes no explicit hydrogens)."""
    for selfies in moses_selfies(300):
        atoms, due = states(tokenizer, selfies)[-1]
        mol = Chem.MolFromSmiles(selfies_to_smiles(selfies))
        assert (atoms, due) == (mol.GetNumAtoms(), 0), selfies


def counter_model(tokenizer, **kw) -> SequenceVAE:
    roles = selfies_roles(list(tokenizer.vocab))
    config = ModelConfig(vocab_size=tokenizer.vocab_size, embedding_dim=8, encoder_hidden=16,
                         latent_dim=4, decoder_hidden=16, max_length=40, selfies_counter=True,
                         token_roles=roles, **kw)
    return SequenceVAE(config).eval()


@pytest.mark.parametrize("decoder", ["gru", "lstm", "transformer"])
def test_generation_reads_the_counts_it_was_trained_with(tokenizer, decoder):
    """Decoding one token at a time (sequences leaving the batch as they end) gives each
    sequence the NLL that the teacher-forced pass, counts computed over the whole prefix, gives
    it: both paths add the same counts to the same tokens."""
    torch.manual_seed(3)
    model = counter_model(tokenizer, decoder=decoder, n_heads=2, feedforward_dim=32)
    with torch.no_grad():  # counts that matter: the untrained embeddings are small against them
        model.counter.count.weight.mul_(5)
    z = torch.randn(12, 4)
    gen = model.generate(z, generator=torch.Generator().manual_seed(0))
    ends = {(row + [2]).index(2) for row in gen.tokens.tolist()}
    assert len(ends) > 1  # sequences left the batch at different steps
    rows = []
    for ids in gen.tokens.tolist():
        end = ids.index(2) + 1 if 2 in ids else len(ids)
        rows.append([1] + ids[:end])
    lengths = torch.tensor([len(r) for r in rows])
    tokens = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, :len(r)] = torch.tensor(r)
    with torch.no_grad():
        logits = model.decoder(model.decoder_embedding(tokens[:, :-1]), z)
        without = model.decoder(model.embedding(tokens[:, :-1]), z)
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tokens[:, 1:],
                                            ignore_index=0, reduction="none").sum(1)
    assert torch.allclose(nll, gen.nll, atol=1e-3)
    wrong = torch.nn.functional.cross_entropy(without.transpose(1, 2), tokens[:, 1:],
                                              ignore_index=0, reduction="none").sum(1)
    assert not torch.allclose(wrong, gen.nll, atol=1e-3)  # the counts do change the decoder


def test_grown_vocabulary_learns_the_new_tokens_roles(tokenizer):
    model = counter_model(tokenizer)
    grown = grow_vocabulary(model, ["[=Ring3]", "[Xe]"])
    assert grown.config.token_roles == [*model.config.token_roles, -3, ROLE_ATOM]
    assert grown.counter.announces[-2] == 3 and grown.counter.is_atom[-1]


def test_roles_must_cover_the_vocabulary(tokenizer):
    config = ModelConfig(vocab_size=tokenizer.vocab_size, selfies_counter=True,
                         token_roles=[0, 1])
    with pytest.raises(ValueError, match="token_roles has 2 entries"):
        SequenceVAE(config)


def test_counter_needs_selfies():
    with pytest.raises(ConfigError, match="selfies_counter.*smiles"):
        load_config(None, ["model.selfies_counter=true"])
