"""What a SELFIES decoder is told beside each token (model.selfies_counter): how many atoms the
string has derived so far, and how many index symbols are still due.

A SELFIES ring or branch symbol ([Ring1], [=Branch2], ...) is followed by N index symbols (N is
its digit) whose value is read from the same alphabet as the atoms: [Ring1][=Branch1] closes a
ring to the 6th atom back in the order the atoms were derived, [Ring1][Branch1] to the 5th.
A decoder that gets this index wrong by one still writes a valid molecule, with a ring one
atom too small or too large (or, further off, a 3-membered ring or a macrocycle), so a SELFIES
model's mistakes are not filtered out as a SMILES model's invalid strings are, they are sampled.
benchmarks/selfies_counter.py measures how often a model gets these indices right, teacher-
forced on validation molecules, and what the counts below change. Counting atoms is what the
index needs, and an RNN counts poorly, so the counts are given: the decoder's input at each
step is the token's embedding plus an embedding of the number of atoms derived up to and
including that token, plus one of the number of index symbols that follow it (0 to 3).
Both are functions of the prefix alone, computed the same way while training (over the whole
teacher-forced input) and while generating (one token at a time).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

ROLE_OTHER = 0  # special tokens, [nop]: derive no atom
ROLE_ATOM = 1  # any other SELFIES symbol, as an atom; -N: a ring or branch symbol with N indices
_INDEXED = re.compile(r"^\[[^\]]*(?:Ring|Branch)([123])\]$")
MAX_INDICES = 3


def selfies_role(token: str) -> int:
    """The role of one token: -N for a ring or branch symbol followed by N index symbols,
    ROLE_ATOM for an atom symbol, ROLE_OTHER for the rest ([nop], <pad>, <bos>, ...)."""
    match = _INDEXED.match(token)
    if match:
        return -int(match.group(1))
    if token.startswith("[") and token.endswith("]") and token != "[nop]":
        return ROLE_ATOM
    return ROLE_OTHER


def selfies_roles(tokens: Sequence[str]) -> list[int]:
    """Roles of a vocabulary, in id order."""
    return [selfies_role(t) for t in tokens]


def announced_indices(roles: Sequence[int]) -> torch.Tensor:
    """(V,) long: per token id, the index symbols it announces (a ring or branch symbol's
    digit, else 0)."""
    return (-torch.tensor(list(roles), dtype=torch.long)).clamp(min=0)


def next_due(due: torch.Tensor, announces: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    """Index symbols due after ``token`` (B,), given those due before it: an index symbol uses
    one up and announces nothing; any other token announces its own (0 for most)."""
    return torch.where(due > 0, due - 1, announces[token])


CounterState = tuple[torch.Tensor, torch.Tensor]  # (atoms, indices due), each (B,) long


class DerivationCounter(nn.Module):
    """Embeddings of (atoms derived, index symbols due) after each token of a prefix."""

    def __init__(self, roles: Sequence[int], max_count: int, dim: int):
        super().__init__()
        role = torch.tensor(list(roles), dtype=torch.long)
        # per token id: index symbols it announces, and whether it derives an atom
        self.register_buffer("announces", announced_indices(roles), persistent=False)
        self.register_buffer("is_atom", role == ROLE_ATOM, persistent=False)
        self.max_count = max_count
        self.count = nn.Embedding(max_count + 1, dim)
        self.due = nn.Embedding(MAX_INDICES + 1, dim)

    def start(self, batch: int, device: torch.device) -> CounterState:
        zeros = torch.zeros(batch, dtype=torch.long, device=device)
        return zeros, zeros.clone()

    def advance(self, state: CounterState, token: torch.Tensor) -> CounterState:
        """The state after ``token`` (B,): an index symbol is not an atom and announces
        nothing; any other token starts its own indices (if it is a ring or branch symbol) or
        adds an atom."""
        atoms, due = state
        index = due > 0
        atoms = atoms + (~index & self.is_atom[token]).long()
        return atoms, next_due(due, self.announces, token)

    def embed(self, state: CounterState) -> torch.Tensor:
        """(..., dim): what the decoder adds to the embedding of the token that led to state."""
        atoms, due = state
        return self.count(atoms.clamp(max=self.max_count)) + self.due(due)

    @staticmethod
    def select(state: CounterState, index: torch.Tensor) -> CounterState:
        return state[0].index_select(0, index), state[1].index_select(0, index)

    def states(self, tokens: torch.Tensor) -> CounterState:
        """(B, T) token ids of a prefix -> (atoms, indices due), each (B, T): the state after
        each token."""
        state = self.start(tokens.size(0), tokens.device)
        atoms, due = [], []
        for t in range(tokens.size(1)):
            state = self.advance(state, tokens[:, t])
            atoms.append(state[0])
            due.append(state[1])
        return torch.stack(atoms, dim=1), torch.stack(due, dim=1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids of a prefix -> (B, T, dim), the embedding of the state after each."""
        return self.embed(self.states(tokens))
