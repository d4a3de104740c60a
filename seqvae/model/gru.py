"""GRU layers whose recurrence has a hand-written backward pass, for fast training on the CPU.

``nn.GRU`` on the CPU runs the recurrence step by step, and autograd then replays every step
with small matrix products and many small copies (stacking and unstacking the steps). Here the
work that does not depend on the previous step is done as one large matrix product over all
steps, both ways:

- forward: the input projections of all steps, ``x @ W_ih^T``, are one product (as ``nn.GRU``
  also does); only ``h @ W_hh^T`` is left inside the loop;
- backward: the loop computes only what must be sequential, the gradient reaching ``h_{t-1}``
  (``dgates_t @ W_hh``); the weight gradient of ``W_hh`` is then one product over all steps, and
  the input gradients flow back through the one projection product.

A vector that is the same at every step (the latent code z fed beside each input token) is
projected once per sequence instead of once per step, forwards and backwards.

Mixed precision: under ``torch.autocast`` (bfloat16 on a CPU with AVX-512 BF16, or on a GPU)
the matrix products run in the autocast dtype while the state, the gates and their gradients
stay in the parameters' dtype (float32), as autocast itself does for ``linear``.

The math is PyTorch's GRU (gates ordered reset, update, new; ``b_hn`` inside the reset
product), and the parameters are those of an ``nn.GRU`` module, so checkpoints do not change
and ``nn.GRU`` can run the same weights (the tests compare the two).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _matmul_dtype(device: torch.device, default: torch.dtype) -> torch.dtype:
    """The dtype matrix products run in: autocast's where it is on, else the parameters'."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return default


def _mm_add(base: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """base + a @ b, with the product in a's dtype and the sum in base's."""
    if a.dtype == base.dtype == b.dtype:
        return torch.addmm(base, a, b)
    return base + torch.mm(a, b).to(base.dtype)


def gru_cell(gi: torch.Tensor, h: torch.Tensor, w_hh: torch.Tensor,
             b_hh: torch.Tensor) -> torch.Tensor:
    """One GRU step from precomputed input gates gi (B, 3H) and state h (B, H) -> new h."""
    gh = torch.addmm(b_hh, h, w_hh.t())
    i_r, i_u, i_n = gi.chunk(3, dim=1)
    h_r, h_u, h_n = gh.chunk(3, dim=1)
    r = torch.sigmoid(i_r + h_r)
    u = torch.sigmoid(i_u + h_u)
    n = torch.tanh(i_n + r * h_n)
    return n + u * (h - n)


class _Recurrence(torch.autograd.Function):
    """h_t = GRU(gi_t, h_{t-1}) over all steps: gi (T, B, 3H), h0 (B, H) -> outputs (T, B, H).

    Products run in ``mm_dtype``; the state, the gates and their gradients are kept in the
    dtype of b_hh. Elementwise work is written as few passes over memory as it can be (lerp,
    addcmul), since on a CPU these passes, not the products, are what the step waits for.
    """

    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh, mm_dtype):  # noqa: D102 (autograd API)
        steps, batch, three_h = gi.shape
        hidden = three_h // 3
        dtype = b_hh.dtype
        mixed = mm_dtype != dtype
        ctx.dtypes = (gi.dtype, h0.dtype, w_hh.dtype, b_hh.dtype)
        with torch.autocast(gi.device.type, enabled=False):
            w = w_hh.to(mm_dtype)  # (3H, H)
            b = b_hh.to(mm_dtype)
            gi = gi.to(dtype)
            h0 = h = h0.to(dtype)
            outputs = gi.new_empty(steps, batch, hidden)
            gates = gi.new_empty(steps, batch, three_h)  # r, u, n after their activations
            hidden_gates = gi.new_empty(steps, batch, three_h)  # W_hh h + b_hh
            for t in range(steps):
                gh = hidden_gates[t]  # (B, 3H)
                if mixed:
                    gh.copy_(torch.addmm(b, h.to(mm_dtype), w.t()))
                else:
                    torch.addmm(b, h, w.t(), out=gh)
                g = gates[t]
                r, u, n = g[:, :hidden], g[:, hidden:2 * hidden], g[:, 2 * hidden:]
                torch.add(gi[t, :, :2 * hidden], gh[:, :2 * hidden], out=g[:, :2 * hidden])
                torch.sigmoid_(g[:, :2 * hidden])
                torch.addcmul(gi[t, :, 2 * hidden:], r, gh[:, 2 * hidden:], out=n)
                torch.tanh_(n)
                h = torch.lerp(n, h, u, out=outputs[t])  # h' = n + u * (h - n)
        ctx.save_for_backward(h0, w, outputs, gates, hidden_gates)
        return outputs

    @staticmethod
    def backward(ctx, grad_outputs):  # noqa: D102 (autograd API)
        h0, w, outputs, gates, hidden_gates = ctx.saved_tensors
        gi_dtype, h0_dtype, w_dtype, b_dtype = ctx.dtypes
        mm_dtype = w.dtype
        steps, batch, hidden = outputs.shape
        mixed = mm_dtype != outputs.dtype
        with torch.autocast(outputs.device.type, enabled=False):
            grad_outputs = grad_outputs.to(outputs.dtype)
            grad_gi = torch.empty_like(gates)  # d loss / d (input gate pre-activations)
            grad_hn = torch.empty_like(outputs)  # d loss / d (W_hn h + b_hn)
            step_grads = gates.new_empty(batch, 3 * hidden, dtype=mm_dtype) if mixed else None
            grad_h = torch.zeros_like(h0)
            for t in range(steps - 1, -1, -1):
                grad_h += grad_outputs[t]
                h_prev = outputs[t - 1] if t else h0
                g = gates[t]
                r, u, n = g[:, :hidden], g[:, hidden:2 * hidden], g[:, 2 * hidden:]
                gi_t = grad_gi[t]
                d_r, d_u, d_n = gi_t[:, :hidden], gi_t[:, hidden:2 * hidden], gi_t[:, 2 * hidden:]
                d_h_n = torch.addcmul(grad_h, grad_h, u, value=-1)  # grad_h * (1 - u)
                torch.addcmul(d_h_n, d_h_n * n, n, value=-1, out=d_n)  # through tanh
                torch.mul(grad_h, h_prev - n, out=d_u)
                d_u.mul_(torch.addcmul(u, u, u, value=-1))  # through sigmoid: u (1 - u)
                torch.mul(d_n, hidden_gates[t, :, 2 * hidden:], out=d_r)
                d_r.mul_(torch.addcmul(r, r, r, value=-1))
                torch.mul(d_n, r, out=grad_hn[t])
                if mixed:  # d (W_hh h + b_hh), as one contiguous matrix in the product dtype
                    step_grads[:, :2 * hidden].copy_(gi_t[:, :2 * hidden])
                    step_grads[:, 2 * hidden:].copy_(grad_hn[t])
                    grad_h = _mm_add(grad_h * u, step_grads, w)
                else:
                    grad_h = torch.addmm(grad_h * u, gi_t[:, :2 * hidden], w[:2 * hidden])
                    grad_h.addmm_(grad_hn[t], w[2 * hidden:])
            h_prev_all = torch.cat([h0.unsqueeze(0), outputs[:-1]], 0).view(steps * batch, hidden)
            h_prev_all = h_prev_all.to(mm_dtype)
            flat_gi = grad_gi.view(steps * batch, 3 * hidden)
            flat_hn = grad_hn.view(steps * batch, hidden)
            grad_w_hh = torch.cat([flat_gi[:, :2 * hidden].to(mm_dtype).t().mm(h_prev_all),
                                   flat_hn.to(mm_dtype).t().mm(h_prev_all)], 0)  # (3H, H)
            grad_b_hh = torch.cat([flat_gi[:, :2 * hidden].sum(0), flat_hn.sum(0)])
        return (grad_gi.to(gi_dtype), grad_h.to(h0_dtype), grad_w_hh.to(w_dtype),
                grad_b_hh.to(b_dtype), None)


def gru_recurrence(gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor,
                   b_hh: torch.Tensor) -> torch.Tensor:
    """All steps of one GRU layer: input gates gi (T, B, 3H), h0 (B, H) -> outputs (T, B, H)."""
    mm_dtype = _matmul_dtype(gi.device, b_hh.dtype)
    return _Recurrence.apply(gi.contiguous(), h0.contiguous(), w_hh, b_hh, mm_dtype)


def _layer_weights(rnn: nn.GRU, layer: int) -> tuple[torch.Tensor, ...]:
    return (getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"bias_ih_l{layer}"),
            getattr(rnn, f"weight_hh_l{layer}"), getattr(rnn, f"bias_hh_l{layer}"))


def run_gru(rnn: nn.GRU, x: torch.Tensor, h0: torch.Tensor | None = None,
            first_gates: torch.Tensor | None = None) -> torch.Tensor:
    """A unidirectional, batch-first ``nn.GRU`` over x (B, T, I) -> outputs (B, T, H).

    Same function as ``rnn(x, h0)[0]`` (dropout between layers included), by the fast
    recurrence on a CPU; elsewhere (a GPU, where cuDNN's fused GRU is the fast path) by
    ``nn.GRU`` itself. first_gates (T, B, 3H), when given, replaces the first layer's input
    gates (CPU only).
    """
    if rnn.bidirectional or not rnn.batch_first:
        raise ValueError("run_gru takes a unidirectional, batch-first nn.GRU")
    if x.device.type != "cpu" and first_gates is None:
        return nn.GRU.forward(rnn, x, h0)[0]
    batch = x.size(0)
    if h0 is None:
        h0 = x.new_zeros(rnn.num_layers, batch, rnn.hidden_size, dtype=rnn.weight_hh_l0.dtype)
    out = x.transpose(0, 1)  # (T, B, I)
    for layer in range(rnn.num_layers):
        w_ih, b_ih, w_hh, b_hh = _layer_weights(rnn, layer)
        if layer == 0 and first_gates is not None:
            gi = first_gates
        else:
            if layer:
                out = F.dropout(out, rnn.dropout, rnn.training)
            gi = F.linear(out, w_ih, b_ih)  # (T, B, 3H)
        out = gru_recurrence(gi, h0[layer], w_hh, b_hh)  # (T, B, H)
    return out.transpose(0, 1)


class LatentGRU(nn.GRU):
    """A stacked GRU fed (token embedding, z) at every step, z projected once per sequence.

    It is an ``nn.GRU`` (batch first) with the same parameters; ``run`` and ``step_latent``
    are the fast paths, and ``nn.GRU``'s own ``forward`` on ``[embedding, z]`` inputs computes
    the same function.
    """

    def __init__(self, embedding_dim: int, latent_dim: int, hidden: int, layers: int,
                 dropout: float = 0.0, z_to_input: bool = True):
        input_dim = embedding_dim + (latent_dim if z_to_input else 0)
        super().__init__(input_dim, hidden, num_layers=layers, batch_first=True,
                         dropout=dropout if layers > 1 else 0.0)
        self.embedding_dim = embedding_dim
        self.z_to_input = z_to_input

    def latent_gates(self, z: torch.Tensor) -> torch.Tensor | None:
        """The part of the first layer's input gates that comes from z, with its bias: (B, 3H)."""
        w_ih, b_ih, _, _ = _layer_weights(self, 0)
        if not self.z_to_input:
            return None
        return F.linear(z, w_ih[:, self.embedding_dim:], b_ih)

    def _first_gates(self, emb: torch.Tensor, zg: torch.Tensor | None) -> torch.Tensor:
        w_ih, b_ih, _, _ = _layer_weights(self, 0)
        if zg is None:
            return F.linear(emb, w_ih, b_ih)
        return F.linear(emb, w_ih[:, :self.embedding_dim]) + zg  # zg broadcasts over steps

    def run(self, emb: torch.Tensor, z: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: emb (B, T, E), z (B, D), h0 (L, B, H) -> outputs (B, T, H).

        The CPU path; on a GPU, ``nn.GRU``'s own forward on ``[embedding, z]`` is faster.
        """
        gates = self._first_gates(emb.transpose(0, 1), self.latent_gates(z))  # (T, B, 3H)
        return run_gru(self, emb, h0, first_gates=gates)

    def step_latent(self, emb: torch.Tensor, zg: torch.Tensor | None,
                    h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: emb (B, E), latent gates zg (B, 3H), state h (L, B, H) -> output, new state."""
        new = []
        x = emb
        for layer in range(self.num_layers):
            w_ih, b_ih, w_hh, b_hh = _layer_weights(self, layer)
            gi = self._first_gates(x, zg) if layer == 0 else F.linear(x, w_ih, b_ih)
            x = gru_cell(gi, h[layer], w_hh, b_hh)
            new.append(x)
        return x, torch.stack(new)
