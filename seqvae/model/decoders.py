"""Autoregressive decoders conditioned on z: teacher-forced logits for training, and one step
at a time for generation."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import ModelConfig
from .gru import LatentGRU


class RNNDecoder(nn.Module):
    """GRU/LSTM decoder; z sets the initial state and/or is fed beside every input token."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cell = cfg.decoder
        self.layers = cfg.decoder_layers
        self.hidden = cfg.decoder_hidden
        self.z_to_input = cfg.z_to_input
        dropout = cfg.decoder_dropout if cfg.decoder_layers > 1 else 0.0
        # decoder_dropout also drops units of the input embeddings and of the top layer's
        # output (the recipe of Zaremba et al. 2014), so a one-layer decoder is regularised too
        self.drop = nn.Dropout(cfg.decoder_dropout)
        if cfg.decoder == "gru":  # same parameters as nn.GRU, faster recurrence (see gru.py)
            self.rnn = LatentGRU(cfg.embedding_dim, cfg.latent_dim, cfg.decoder_hidden,
                                 cfg.decoder_layers, dropout, cfg.z_to_input)
        else:
            input_dim = cfg.embedding_dim + (cfg.latent_dim if cfg.z_to_input else 0)
            self.rnn = nn.LSTM(input_dim, cfg.decoder_hidden, num_layers=cfg.decoder_layers,
                               batch_first=True, dropout=dropout)
        n_states = 2 if cfg.decoder == "lstm" else 1
        self.z_to_state = (nn.Linear(cfg.latent_dim, n_states * cfg.decoder_layers * cfg.decoder_hidden)
                           if cfg.z_to_state else None)
        self.output = nn.Linear(cfg.decoder_hidden, cfg.vocab_size)

    def _start(self, z: torch.Tensor) -> Any:
        """The RNN state before the first token, from z or zeros: h (L, B, H), or (h, c)."""
        batch = z.size(0)
        if self.z_to_state is None:
            h = z.new_zeros(self.layers, batch, self.hidden)
            return (h, h.clone()) if self.cell == "lstm" else h
        states = self.z_to_state(z).view(batch, -1, self.layers, self.hidden)  # (B, S, L, H)
        states = states.permute(1, 2, 0, 3).contiguous()  # (S, L, B, H)
        return (states[0], states[1]) if self.cell == "lstm" else states[0]

    def _inputs(self, emb: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if not self.z_to_input:
            return emb
        return torch.cat([emb, z.unsqueeze(1).expand(-1, emb.size(1), -1)], dim=-1)

    def forward(self, emb: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: emb (B, T, E) of the input tokens, z (B, D) -> logits (B, T, V)."""
        emb = self.drop(emb)
        if self.cell == "gru" and emb.device.type == "cpu":  # the fast recurrence (gru.py)
            out = self.rnn.run(emb, z, self._start(z))  # (B, T, H)
        else:  # elsewhere nn.GRU / nn.LSTM themselves (cuDNN's fused kernels on a GPU)
            out, _ = self.rnn(self._inputs(emb, z), self._start(z))
        return self.output(self.drop(out))

    def initial_state(self, z: torch.Tensor) -> dict[str, Any]:
        """Generation state: the RNN state, and what z adds to every step (computed once)."""
        if self.cell == "gru":
            return {"h": self._start(z), "zg": self.rnn.latent_gates(z)}
        return {"h": self._start(z)}

    def step(self, emb: torch.Tensor, z: torch.Tensor, state: dict[str, Any]) -> tuple[torch.Tensor, Any]:
        """One step: emb (B, 1, E) of the latest token -> logits (B, V) and the new state."""
        if self.cell == "gru":
            out, h = self.rnn.step_latent(emb[:, 0], state["zg"], state["h"])
            return self.output(out), {**state, "h": h}
        out, h = self.rnn(self._inputs(emb, z), state["h"])  # (B, 1, H)
        return self.output(out[:, 0]), {**state, "h": h}

    @staticmethod
    def select(state: dict[str, Any], index: torch.Tensor) -> dict[str, Any]:
        """The generation state of the sequences at index (batch positions) only."""
        def pick(key: str, value: Any) -> Any:
            if value is None:
                return None
            if key == "h":  # (L, B, H), or the LSTM's pair of them
                if isinstance(value, tuple):
                    return tuple(v.index_select(1, index) for v in value)
                return value.index_select(1, index)
            return value.index_select(0, index)  # (B, ...)
        return {key: pick(key, value) for key, value in state.items()}


class TransformerDecoder(nn.Module):
    """Causal pre-norm Transformer decoder that attends to z turned into memory vectors."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d_model = cfg.decoder_hidden
        self.memory_tokens = cfg.memory_tokens
        self.z_to_input = cfg.z_to_input
        input_dim = cfg.embedding_dim + (cfg.latent_dim if cfg.z_to_input else 0)
        self.input = nn.Linear(input_dim, d_model)
        self.positions = nn.Embedding(cfg.max_length, d_model)
        self.memory = nn.Linear(cfg.latent_dim, cfg.memory_tokens * d_model)
        layer = nn.TransformerDecoderLayer(d_model, cfg.n_heads, cfg.feedforward_dim,
                                           dropout=cfg.decoder_dropout, batch_first=True,
                                           norm_first=True)
        self.layers = nn.TransformerDecoder(layer, cfg.decoder_layers, norm=nn.LayerNorm(d_model))
        self.output = nn.Linear(d_model, cfg.vocab_size)

    def _memory(self, z: torch.Tensor) -> torch.Tensor:
        return self.memory(z).view(z.size(0), self.memory_tokens, -1)  # (B, M, D)

    def _embed(self, emb: torch.Tensor, z: torch.Tensor, offset: int = 0) -> torch.Tensor:
        if self.z_to_input:
            emb = torch.cat([emb, z.unsqueeze(1).expand(-1, emb.size(1), -1)], dim=-1)
        steps = torch.arange(offset, offset + emb.size(1), device=emb.device)
        return self.input(emb) + self.positions(steps)

    def _run(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        steps = x.size(1)
        causal = nn.Transformer.generate_square_subsequent_mask(steps, device=x.device, dtype=x.dtype)
        return self.layers(x, memory, tgt_mask=causal, tgt_is_causal=True)  # (B, T, D)

    def forward(self, emb: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: emb (B, T, E), z (B, D) -> logits (B, T, V)."""
        return self.output(self._run(self._embed(emb, z), self._memory(z)))

    def initial_state(self, z: torch.Tensor) -> Any:
        """Generation state: the memory and the inputs seen so far."""
        return {"memory": self._memory(z), "inputs": None}

    def step(self, emb: torch.Tensor, z: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One step: emb (B, 1, E) of the latest token -> logits (B, V) and the new state."""
        seen = 0 if state["inputs"] is None else state["inputs"].size(1)
        x = self._embed(emb, z, offset=seen)
        inputs = x if state["inputs"] is None else torch.cat([state["inputs"], x], dim=1)
        h = self._run(inputs, state["memory"])
        return self.output(h[:, -1]), {"memory": state["memory"], "inputs": inputs}

    @staticmethod
    def select(state: dict[str, Any], index: torch.Tensor) -> dict[str, Any]:
        """The generation state of the sequences at index (batch positions) only."""
        return {key: None if value is None else value.index_select(0, index)
                for key, value in state.items()}


def build_decoder(cfg: ModelConfig) -> nn.Module:
    """The decoder named by cfg.decoder."""
    return TransformerDecoder(cfg) if cfg.decoder == "transformer" else RNNDecoder(cfg)
