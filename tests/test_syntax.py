"""The SMILES syntax mask (seqvae.model.syntax) and sampling under it (sample(syntax=True))."""

import pandas as pd
import pytest
import torch
from rdkit import Chem

import seqvae
from seqvae.data import read_strings, resolve_data
from seqvae.errors import DataError
from seqvae.model.syntax import ATOM, BOND, CLOSE, OPEN, RING, SmilesSyntax, token_kind


VOCAB = ["<pad>", "<bos>", "<eos>", "<unk>", "c", "C", "(", ")", "1", "2", "=", "#", "N", "O",
         "[nH]", "Cl", "%10", "."]


def syntax() -> SmilesSyntax:
    return SmilesSyntax(VOCAB, eos_id=2, special=[0, 1, 3])


def state_after(syn: SmilesSyntax, tokens: list[str]) -> dict[str, torch.Tensor]:
    state = syn.start(1, torch.device("cpu"))
    for t in tokens:
        assert syn.allowed(state)[0, VOCAB.index(t)], (tokens, t)
        state = syn.advance(state, torch.tensor([VOCAB.index(t)]))
    return state


def allowed(syn: SmilesSyntax, tokens: list[str]) -> set[str]:
    mask = syn.allowed(state_after(syn, tokens))[0]
    return {VOCAB[i] for i in mask.nonzero().squeeze(1).tolist()}


def test_token_kinds():
    assert token_kind("[C@@H]") == ATOM and token_kind("Cl") == ATOM and token_kind("c") == ATOM
    assert token_kind("=") == BOND and token_kind("(") == OPEN and token_kind(")") == CLOSE
    assert token_kind("%10") == RING and token_kind("%(123)") == RING and token_kind("7") == RING
    assert token_kind("Xx") is None and token_kind("[]") is None


def test_what_may_follow():
    syn = syntax()
    first = allowed(syn, [])
    assert first == {"c", "C", "N", "O", "[nH]", "Cl"}  # a string starts with an atom
    # an open ring: the end is refused until it closes; "C11" is no ring
    assert "<eos>" not in allowed(syn, ["c", "1", "c", "c"])
    assert "1" not in allowed(syn, ["C", "1"])
    assert "<eos>" in allowed(syn, ["C", "1", "C", "C", "1"])
    # branches: no ")" at the top level, no end inside one, "(" only after an atom
    assert ")" not in allowed(syn, ["C"])
    assert "<eos>" not in allowed(syn, ["C", "(", "C"])
    assert allowed(syn, ["C", "("]) == first | {"=", "#"}
    assert "(" not in allowed(syn, ["C", "="])
    # a bond needs an atom or a ring label after it; a ring label never follows a branch
    assert allowed(syn, ["C", "="]) == first | {"1", "2", "%10"}
    assert "1" not in allowed(syn, ["C", "(", "C", ")"])
    # the special tokens are never written; a dot only at the top level, then an atom
    assert not {"<pad>", "<bos>", "<unk>"} & allowed(syn, ["C"])
    assert "." not in allowed(syn, ["C", "(", "C"])
    assert allowed(syn, ["C", "."]) == first


def test_ring_bonds_after_a_branch_know_the_atom_they_are_on():
    """After ")" the current atom is the branch point again, with its own parent: a ring
    bond from it to itself ("C1(CC)=1") or to the atom it is bonded to ("C1C(C)=1") is
    refused, as RDKit refuses both strings; one across a real ring is allowed."""
    syn = syntax()
    for refused in (["C", "1", "(", "C", "C", ")", "="], ["C", "1", "C", "(", "C", ")", "="]):
        assert "1" not in allowed(syn, refused)
        assert Chem.MolFromSmiles("".join(refused) + "1", sanitize=False) is None
    across = ["C", "1", "C", "C", "(", "C", ")", "="]
    assert "1" in allowed(syn, across)
    assert Chem.MolFromSmiles("".join(across) + "1") is not None


def test_refuses_a_vocabulary_that_is_not_smiles():
    with pytest.raises(ValueError, match="'Xy' \\(id 4\\)"):
        SmilesSyntax(["<pad>", "<bos>", "<eos>", "[C]", "Xy"], eos_id=2, special=[0, 1])


def test_every_moses_molecule_passes_the_mask():
    """The mask never refuses a token of a real SMILES string (3,000 MOSES validation
    molecules, tokenized by the shipped model's tokenizer), and allows the end after it."""
    model = seqvae.load("moses-charrnn")
    tok = model.tokenizer
    syn = SmilesSyntax(list(tok.vocab), tok.eos_id, [tok.pad_id, tok.bos_id, tok.unk_id])
    strings = read_strings(resolve_data("default:moses_valid"))[:3000]
    ids = [[i for i in tok.encode(s) if i != tok.bos_id] for s in strings]
    width = max(map(len, ids))
    batch = torch.tensor([x + [tok.pad_id] * (width - len(x)) for x in ids])
    state = syn.start(len(ids), torch.device("cpu"))
    lengths = torch.tensor([len(x) for x in ids])
    for t in range(width):
        live = (t < lengths).nonzero().squeeze(1)
        sub = syn.select(state, live)
        ok = syn.allowed(sub).gather(1, batch[live, t].unsqueeze(1)).squeeze(1)
        assert bool(ok.all()), [strings[i] for i in live[~ok].tolist()][:5]
        advanced = syn.advance(sub, batch[live, t])
        for key in state:
            state[key][live] = advanced[key]


def test_sampling_under_the_mask_writes_smiles_strings():
    """Every sample of a real trained model that ended (not cut at max_length) parses as
    SMILES under the mask (RDKit without sanitising: syntax only); the NLL is still the
    model's own."""
    model = seqvae.load("moses-charrnn")
    free = model.sample(300, seed=0)
    masked = model.sample(300, seed=0, syntax=True)
    z = torch.zeros(300, model.latent_dim)
    strings = model.decode(z, greedy=False, seed=0, syntax=True)
    longest = model.config.model.max_length  # <bos> + tokens + <eos>
    ended = [s for s in list(masked["SMILES"]) + strings
             if len(model.tokenizer.encode(s)) <= longest]
    assert len(ended) > 500
    for s in ended:
        assert Chem.MolFromSmiles(s, sanitize=False) is not None, s
    cut = [s for s in free["SMILES"][~free["valid"]]
           if len(model.tokenizer.encode(s)) <= longest]
    assert any(Chem.MolFromSmiles(s, sanitize=False) is None for s in cut)  # unmasked: some
    assert (masked["NLL"] > 0).all()


def test_syntax_refused_for_other_models(tmp_path):
    model = seqvae.load("moses-selfies")
    with pytest.raises(DataError, match="SMILES"):
        model.sample(5, syntax=True)


def test_cli_sample_with_the_mask(capsys, tmp_path):
    from seqvae.cli import main

    out = tmp_path / "s.csv"
    assert main(["sample", "moses-charrnn", "-n", "50", "-o", str(out), "--seed", "0",
                 "--syntax", "--no-progress", "--no-grid"]) == 0
    table = pd.read_csv(out)
    assert len(table) == 50 and table["valid"].mean() > 0.5
    assert main(["sample", "moses-selfies", "-n", "5", "-o", str(out), "--syntax",
                 "--no-progress"]) == 2
    assert "SMILES syntax mask" in capsys.readouterr().err
