"""SMILES syntax while decoding: which tokens may come next so that the string stays SMILES.

A SMILES decoder sampled freely writes some strings that are not SMILES at all: a ring bond
opened and never closed ("c1ccccc"), a branch closed that was never opened, a bond symbol with
no atom after it, a string that ends inside a branch. ``SmilesSyntax`` follows each string as
it is decoded (branch depth, the ring-bond labels open, what the last token was) and masks the
tokens that would break it, so that sampling renormalises over the continuations that keep a
SMILES string parseable. The mask knows syntax only: a string can still break a valence rule
or fail aromaticity perception, which RDKit reports as invalid as before.

The tokens are the atom-level ones of seqvae's SMILES tokenizer: a bracket atom ("[nH]",
"[C@@H]") is one token, as are "Br" and "Cl" and the two-digit ring labels ("%10", "%(123)").
"""

from __future__ import annotations

import re
from typing import Sequence

import torch

# token kinds
START, ATOM, BOND, OPEN, CLOSE, RING, DOT, END, NEVER = range(9)
_ORGANIC = {"B", "C", "N", "O", "P", "S", "F", "Cl", "Br", "I", "b", "c", "n", "o", "p", "s",
            "*"}
_BONDS = {"-", "=", "#", "$", ":", "/", "\\"}
MAX_DEPTH = 32  # branches open at once; "(" is refused beyond
_RING = re.compile(r"^(?:[0-9]|%[0-9]{2}|%\([0-9]+\))$")

# the kinds that may follow each kind (END: the end-of-sequence token)
_FOLLOWS = {
    START: {ATOM},
    ATOM: {ATOM, BOND, OPEN, CLOSE, RING, DOT, END},
    RING: {ATOM, BOND, OPEN, CLOSE, RING, DOT, END},  # a ring label sits on the atom before it
    CLOSE: {ATOM, BOND, OPEN, CLOSE, DOT, END},       # OpenSMILES: "C1(C)", not "C(C)1"
    OPEN: {ATOM, BOND},
    BOND: {ATOM, RING},                                # "C=1CCCCC1": the ring bond's order
    DOT: {ATOM},
}


def token_kind(token: str) -> int | None:
    """The syntactic kind of one SMILES token, None where it is none of them."""
    if token in _ORGANIC or (token.startswith("[") and token.endswith("]") and len(token) > 2):
        return ATOM
    if token in _BONDS:
        return BOND
    if token == "(":
        return OPEN
    if token == ")":
        return CLOSE
    if token == ".":
        return DOT
    if _RING.match(token):
        return RING
    return None


class SmilesSyntax:
    """The syntax mask of one SMILES vocabulary, and the state of a batch of strings under it.

    ``vocab``: the token of each id; ``eos_id``: the end token; ``special``: ids that are never
    written (padding, the start marker, the unknown token). A vocabulary token that is not
    SMILES syntax (nor special) is refused, naming it.
    """

    def __init__(self, vocab: Sequence[str], eos_id: int, special: Sequence[int]):
        kinds = []
        special = set(special)
        for i, token in enumerate(vocab):
            if i == eos_id:
                kinds.append(END)
            elif i in special:
                kinds.append(NEVER)
            else:
                kind = token_kind(token)
                if kind is None:
                    raise ValueError(f"token {token!r} (id {i}) is not SMILES syntax: the "
                                     f"SMILES syntax mask is for a SMILES tokenizer's vocabulary")
                kinds.append(kind)
        self.kinds = torch.tensor(kinds)
        ring_tokens = [i for i, k in enumerate(kinds) if k == RING]
        self.ring_ids = torch.tensor(ring_tokens, dtype=torch.long)
        # the label of each ring token (its column in the state's open-label tables); -1 else
        self.label = torch.full((len(vocab),), -1, dtype=torch.long)
        self.label[self.ring_ids] = torch.arange(len(ring_tokens))
        self.n_labels = len(ring_tokens)
        # (previous kind, token) -> allowed, before the conditions on depth and open rings
        self.follows = torch.zeros(DOT + 1, len(vocab), dtype=torch.bool)
        for before, after in _FOLLOWS.items():
            self.follows[before] = torch.tensor([k in after for k in kinds])
        self.is_close = self.kinds == CLOSE
        self.is_open = self.kinds == OPEN
        self.is_end = self.kinds == END
        self.is_dot = self.kinds == DOT
        self._tables: dict[torch.device, dict[str, torch.Tensor]] = {}

    def _on(self, device: torch.device) -> dict[str, torch.Tensor]:
        """The mask's tables on ``device``, copied there once."""
        if device not in self._tables:
            self._tables[device] = {name: getattr(self, name).to(device) for name in (
                "kinds", "ring_ids", "label", "follows", "is_close", "is_open", "is_end",
                "is_dot")}
        return self._tables[device]

    def start(self, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
        """The state of ``batch`` strings before their first token."""
        def full(*shape: int, value: int = 0, dtype: torch.dtype = torch.long) -> torch.Tensor:
            return torch.full(shape, value, dtype=dtype, device=device)
        labels = self.n_labels
        return {"prev": full(batch, value=START), "depth": full(batch),
                "open": full(batch, labels, dtype=torch.bool),
                # atoms are numbered as written: the one each open label started on, the one
                # new tokens attach to, the one that attached to it (its parent), the atoms
                # and parents "(" left behind
                "opener": full(batch, labels, value=-1), "atom": full(batch, value=-1),
                "parent": full(batch, value=-1), "count": full(batch),
                "stack": full(batch, MAX_DEPTH, value=-1),
                "parents": full(batch, MAX_DEPTH, value=-1),
                # the atoms the labels closed on the current atom reach ("C12CCC12": two bonds)
                "reached": full(batch, labels, value=-1)}

    def allowed(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, V) True where the token keeps each string SMILES."""
        t = self._on(state["prev"].device)
        ok = t["follows"][state["prev"]].clone()
        top = state["depth"] == 0
        ok[:, t["is_close"]] &= (~top).unsqueeze(1)
        ok[:, t["is_open"]] &= (state["depth"] < MAX_DEPTH).unsqueeze(1)
        ok[:, t["is_dot"]] &= top.unsqueeze(1)
        closed = top & ~state["open"].any(1)
        ok[:, t["is_end"]] &= closed.unsqueeze(1)
        if self.n_labels:
            opener, is_open = state["opener"], state["open"]
            # a label opened or closed on the current atom is not used again there ("C11",
            # "C1(CC)=1": a ring bond from an atom to itself); nor closed on the atom bonded
            # to its opener already ("C1C1", "C1C(C)=1") or a second time between the same
            # two atoms ("C12CCC12")
            here = (is_open & (opener == state["atom"].unsqueeze(1))) | (state["reached"] >= 0)
            twice = (state["reached"].unsqueeze(2) == opener.unsqueeze(1)).any(1)
            bad = here | (is_open & ((opener == state["parent"].unsqueeze(1)) | twice))
            ok[:, t["ring_ids"]] &= ~bad
        return ok

    def advance(self, state: dict[str, torch.Tensor], chosen: torch.Tensor
                ) -> dict[str, torch.Tensor]:
        """The state after each string's chosen token (B,)."""
        t = self._on(chosen.device)
        kind = t["kinds"][chosen]
        new = {k: v.clone() for k, v in state.items()}
        atom, opened, closed = kind == ATOM, kind == OPEN, kind == CLOSE
        # an atom: bonded to the one before it unless a dot (or nothing) came first
        new["count"] += atom.long()
        chained = atom & (state["prev"] != DOT) & (state["prev"] != START)
        new["parent"] = torch.where(atom, torch.where(chained, state["atom"], -1),
                                    state["parent"])
        new["atom"] = torch.where(atom, new["count"], state["atom"])
        new["reached"] = torch.where(atom.unsqueeze(1), -1, state["reached"])
        # a branch: "(" keeps the atom it hangs from and that atom's parent, ")" goes back to
        # them
        depth = state["depth"]
        at = opened.nonzero().squeeze(1)
        new["stack"][at, depth[at]] = state["atom"][at]
        new["parents"][at, depth[at]] = state["parent"][at]
        back = closed.nonzero().squeeze(1)
        new["atom"][back] = state["stack"][back, depth[back] - 1]
        new["parent"][back] = state["parents"][back, depth[back] - 1]
        new["depth"] = depth + opened.long() - closed.long()
        if self.n_labels:
            label = t["label"][chosen]
            ring = (label >= 0).nonzero().squeeze(1)
            lab = label[ring]
            was_open = state["open"][ring, lab]
            new["open"][ring, lab] = ~was_open
            new["opener"][ring, lab] = torch.where(was_open, -1, state["atom"][ring])
            new["reached"][ring, lab] = torch.where(was_open, state["opener"][ring, lab], -1)
        new["prev"] = torch.where(kind == END, state["prev"], kind)
        return new

    @staticmethod
    def select(state: dict[str, torch.Tensor], keep: torch.Tensor) -> dict[str, torch.Tensor]:
        """The state of the strings still decoding (their batch positions ``keep``)."""
        return {k: v[keep] for k, v in state.items()}
