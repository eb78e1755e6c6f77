"""run_recurrent (a padded batch, oneDNN's fused kernels) gives what the same layer gives on
packed sequences: the outputs at every valid step, the state at each row's last step, and
the gradients of all of them, for RNN and LSTM, one or two directions."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from studybench.models.text.rnn import run_recurrent


def _inputs(seed: int, batch: int = 7, steps: int = 9, features: int = 5):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, steps, features, generator=generator)
    lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    lengths[0] = steps  # one full row, as in a batch trimmed to its longest song
    return x, lengths


@pytest.mark.parametrize("cell", [nn.LSTM, nn.RNN])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_run_equals_packed_sequences(cell, bidirectional):
    torch.manual_seed(0)
    layer = cell(5, 4, batch_first=True, bidirectional=bidirectional)
    x, lengths = _inputs(1)
    # padding that is not zero: it must not reach any valid step in either direction
    x = torch.where(torch.arange(9)[None, :, None] < lengths[:, None, None], x, 100.0).requires_grad_()

    packed_out, state = layer(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    expected_steps, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=9)
    expected_last = state[0] if isinstance(state, tuple) else state
    weights = torch.randn(expected_steps.shape)
    ((expected_steps * weights).sum() + expected_last.sum()).backward()
    expected_grads = [p.grad.clone() for p in [x, *layer.parameters()]]
    for p in [x, *layer.parameters()]:
        p.grad = None

    steps, last = run_recurrent(layer, x, lengths)
    torch.testing.assert_close(steps, expected_steps, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(last, expected_last, atol=1e-6, rtol=1e-5)
    ((steps * weights).sum() + last.sum()).backward()
    for got, expected in zip([x.grad, *(p.grad for p in layer.parameters())], expected_grads):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert x.grad[~(torch.arange(9)[None, :] < lengths[:, None])].abs().max() == 0  # padding gets none


def test_a_multi_layer_module_is_refused():
    with pytest.raises(ValueError, match="one batch-first layer"):
        run_recurrent(nn.LSTM(5, 4, num_layers=2, batch_first=True), *_inputs(0))


def test_bf16_autocast_trains_where_onednn_has_no_bf16_kernel(monkeypatch):
    """Under bf16 autocast (train.precision=bf16) on a CPU without native bf16, where oneDNN
    refuses to build a bf16 LSTM, the layer runs in fp32 and trains."""
    from studybench.training import engine

    monkeypatch.setattr(engine, "native_bf16", lambda: False)
    torch.manual_seed(0)
    layer = nn.LSTM(5, 4, batch_first=True, bidirectional=True)
    x, lengths = _inputs(2)
    expected, _ = run_recurrent(layer, x, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        steps, _ = run_recurrent(layer, x, lengths)
    steps.sum().backward()
    assert steps.dtype == torch.float32 and torch.equal(steps, expected)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())
