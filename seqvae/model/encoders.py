"""Encoders: token embeddings (B, T, E) and lengths (B,) -> one summary vector per sequence."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .gru import run_gru


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of x (B, T, ...) within its own length, leaving padding in place."""
    batch, steps = x.shape[:2]
    positions = torch.arange(steps, device=x.device).expand(batch, steps)
    flipped = lengths.unsqueeze(1) - 1 - positions
    index = torch.where(flipped >= 0, flipped, positions)  # (B, T)
    index = index.view(batch, steps, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


def padding_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T) boolean mask, True at padded positions."""
    return torch.arange(steps, device=lengths.device).unsqueeze(0) >= lengths.unsqueeze(1)


class RNNEncoder(nn.Module):
    """GRU/LSTM encoder, optionally bidirectional and stacked.

    Padded batches are used as they are (no packing, which is slow on CPU): the forward
    direction is read at each sequence's last real token, and the backward direction runs over
    the sequence reversed within its length, so neither direction ever reads padding before a
    real token.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cell = nn.GRU if cfg.encoder == "gru" else nn.LSTM
        self.fast_gru = cfg.encoder == "gru"  # same function as nn.GRU, faster (see gru.py)
        self.bidirectional = cfg.bidirectional
        self.dropout = nn.Dropout(cfg.encoder_dropout)
        hidden = cfg.encoder_hidden
        if self.bidirectional:
            # one single-layer RNN per direction and layer, so layer l+1 reads both directions
            sizes = [cfg.embedding_dim] + [2 * hidden] * (cfg.encoder_layers - 1)
            self.forward_rnns = nn.ModuleList(cell(s, hidden, batch_first=True) for s in sizes)
            self.backward_rnns = nn.ModuleList(cell(s, hidden, batch_first=True) for s in sizes)
            self.output_dim = 2 * hidden
        else:
            self.rnn = cell(cfg.embedding_dim, hidden, num_layers=cfg.encoder_layers,
                            batch_first=True,
                            dropout=cfg.encoder_dropout if cfg.encoder_layers > 1 else 0.0)
            self.output_dim = hidden

    def _run(self, rnn: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return run_gru(rnn, x) if self.fast_gru else rnn(x)[0]

    def forward(self, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """emb (B, T, E), lengths (B,) -> summary (B, output_dim)."""
        rows = torch.arange(emb.size(0), device=emb.device)
        last = lengths - 1
        if not self.bidirectional:
            out = self._run(self.rnn, emb)  # (B, T, H)
            return out[rows, last]
        x = emb
        for i, (fwd, bwd) in enumerate(zip(self.forward_rnns, self.backward_rnns)):
            if i:
                x = self.dropout(x)
            forward_out = self._run(fwd, x)  # (B, T, H)
            backward_out = self._run(bwd, reverse_padded(x, lengths))  # (B, T, H), reversed time
            x = torch.cat([forward_out, reverse_padded(backward_out, lengths)], dim=-1)
        # the backward direction has read the whole sequence at its last reversed step
        return torch.cat([forward_out[rows, last], backward_out[rows, last]], dim=-1)


class TransformerEncoder(nn.Module):
    """Pre-norm Transformer encoder with learned positions; masked mean pooling over tokens."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d_model = cfg.encoder_hidden
        self.input = nn.Linear(cfg.embedding_dim, d_model)
        self.positions = nn.Embedding(cfg.max_length, d_model)
        layer = nn.TransformerEncoderLayer(d_model, cfg.n_heads, cfg.feedforward_dim,
                                           dropout=cfg.encoder_dropout, batch_first=True,
                                           norm_first=True)
        self.layers = nn.TransformerEncoder(layer, cfg.encoder_layers, norm=nn.LayerNorm(d_model),
                                            enable_nested_tensor=False)
        self.output_dim = d_model

    def forward(self, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """emb (B, T, E), lengths (B,) -> summary (B, d_model)."""
        steps = emb.size(1)
        pad = padding_mask(lengths, steps)  # (B, T)
        x = self.input(emb) + self.positions(torch.arange(steps, device=emb.device))
        h = self.layers(x, src_key_padding_mask=pad)  # (B, T, D)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        return (h * keep).sum(1) / keep.sum(1)


def build_encoder(cfg: ModelConfig) -> nn.Module:
    """The encoder named by cfg.encoder."""
    return TransformerEncoder(cfg) if cfg.encoder == "transformer" else RNNEncoder(cfg)
