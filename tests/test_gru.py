"""The fast GRU recurrence (seqvae.model.gru) computes nn.GRU's function and gradients, in
float32/float64 and under bfloat16 autocast; generation that drops finished sequences gives
what decoding each sequence alone gives."""

import pytest
import torch
from torch import nn

from seqvae.model import SequenceVAE
from seqvae.model.gru import LatentGRU, run_gru

from test_model import small


def _grads(output, weights, inputs):
    return torch.autograd.grad((output * weights).sum(), inputs)


@pytest.mark.parametrize("layers,z_to_input", [(1, True), (3, True), (2, False)])
def test_latent_gru_is_nn_gru_forward_and_backward(layers, z_to_input):
    torch.manual_seed(0)
    gru = LatentGRU(6, 5, 12, layers, 0.0, z_to_input).double()
    batch, steps = 4, 9
    emb = torch.randn(batch, steps, 6, dtype=torch.double, requires_grad=True)
    z = torch.randn(batch, 5, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(layers, batch, 12, dtype=torch.double, requires_grad=True)
    fast = gru.run(emb, z, h0)
    inputs = torch.cat([emb, z.unsqueeze(1).expand(-1, steps, -1)], -1) if z_to_input else emb
    reference, _ = nn.GRU.forward(gru, inputs, h0)
    assert fast.shape == (batch, steps, 12)
    assert torch.allclose(fast, reference, atol=1e-12)
    weights = torch.randn_like(reference)
    leaves = [emb, z, h0, *gru.parameters()] if z_to_input else [emb, h0, *gru.parameters()]
    for a, b in zip(_grads(fast, weights, leaves), _grads(reference, weights, leaves)):
        assert torch.allclose(a, b, atol=1e-10)


def test_run_gru_is_nn_gru_for_stacked_layers_and_refuses_bidirectional():
    torch.manual_seed(1)
    gru = nn.GRU(7, 10, num_layers=2, batch_first=True).double()
    x = torch.randn(3, 8, 7, dtype=torch.double)
    assert torch.allclose(run_gru(gru, x), gru(x)[0], atol=1e-12)
    with pytest.raises(ValueError, match="unidirectional"):
        run_gru(nn.GRU(7, 10, batch_first=True, bidirectional=True), x)


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(2)
    gru = nn.GRU(4, 8, num_layers=2, batch_first=True, dropout=0.5)
    x = torch.randn(2, 5, 4)
    gru.eval()
    assert torch.allclose(run_gru(gru, x), gru(x)[0], atol=1e-6)
    gru.train()
    assert not torch.allclose(run_gru(gru, x), gru(x)[0].detach(), atol=1e-3)


def test_bf16_autocast_stays_close_and_keeps_float32_state_and_gradients():
    torch.manual_seed(3)
    gru = LatentGRU(16, 8, 64, 2)
    emb = torch.randn(8, 20, 16, requires_grad=True)
    z = torch.randn(8, 8, requires_grad=True)
    h0 = torch.zeros(2, 8, 64)
    reference = gru.run(emb, z, h0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = gru.run(emb, z, h0)
    assert mixed.dtype == torch.float32  # the state is kept in float32
    assert (mixed - reference).abs().max() < 0.05
    assert not torch.equal(mixed, reference)  # the products did run in bfloat16
    weights = torch.randn_like(reference)
    leaves = [emb, z, *gru.parameters()]
    for a, b in zip(_grads(mixed, weights, leaves), _grads(reference, weights, leaves)):
        assert a.dtype == torch.float32
        assert (a - b).norm() / b.norm() < 0.05


@pytest.mark.parametrize("arch", [dict(), dict(decoder="lstm", decoder_layers=2),
                                  dict(decoder="gru", decoder_layers=3, z_to_state=False),
                                  dict(encoder="transformer", decoder="transformer")],
                         ids=["gru", "lstm", "gru3", "transformer"])
def test_batched_generation_equals_one_sequence_at_a_time(arch):
    """Sequences that end leave the batch; the others must decode exactly as they would alone."""
    torch.manual_seed(4)
    model = SequenceVAE(small(**arch)).eval()
    with torch.no_grad():  # larger weights: paths that depend on z (random init barely does)
        for p in model.decoder.parameters():
            p.mul_(3)
    z = 2 * torch.randn(12, 4)
    for _ in range(60):  # raise EOS's logit until greedy sequences end at different steps
        batched = model.generate(z, greedy=True)
        ends = batched.tokens.eq(2).int().argmax(1)[batched.finished]
        if ends.unique().numel() > 2:
            break
        with torch.no_grad():
            model.decoder.output.bias[2] += 0.1
    assert ends.unique().numel() > 2
    for i in range(12):
        alone = model.generate(z[i:i + 1], greedy=True)
        row = batched.tokens[i, :alone.tokens.size(1)]
        assert torch.equal(row, alone.tokens[0]), i
        assert (batched.tokens[i, alone.tokens.size(1):] == 0).all()
        assert torch.allclose(batched.nll[i], alone.nll[0], atol=1e-4)
        assert bool(batched.finished[i]) == bool(alone.finished[0])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_the_layers_run_cudnn_and_compute_the_same_function():
    torch.manual_seed(5)
    decoder = SequenceVAE(small(decoder_layers=2)).decoder
    emb, z = torch.randn(4, 9, 8), torch.randn(4, 4)
    on_cpu = decoder(emb, z)
    on_gpu = decoder.cuda()(emb.cuda(), z.cuda())
    assert torch.allclose(on_gpu.cpu(), on_cpu, atol=1e-5)
    encoder = nn.GRU(6, 12, num_layers=2, batch_first=True)
    expected = run_gru(encoder, emb)
    assert torch.allclose(run_gru(encoder.cuda(), emb.cuda()).cpu(), expected, atol=1e-5)
