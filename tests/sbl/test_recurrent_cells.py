"""The gated layers of the GF-LSTM / GF-GRU are the textbook LSTM and GRU cells (without gated feedback).

Checked against ``torch.nn.LSTMCell`` / ``GRUCell`` with copied weights, so a dropped gate, swapped gates or a
reset gate applied in the wrong place fail.
"""

from __future__ import annotations

import torch
from torch import nn

from unrolled.sbl.recurrent import _GatedLayer

N_IN, H, B = 5, 4, 7


def _layer(cell: str) -> _GatedLayer:
    torch.manual_seed(0)
    layer = _GatedLayer(cell, N_IN, H, n_layers=1, gated_feedback=False).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    return layer


def test_lstm_layer_is_an_lstm_cell():
    layer = _layer("lstm")
    Wi, Wr, bi = layer.gates_in.weight, layer.gates_rec.weight, layer.gates_in.bias
    (wi_i, wi_f, wi_o), (wr_i, wr_f, wr_o), (b_i, b_f, b_o) = Wi.chunk(3), Wr.chunk(3), bi.chunk(3)
    ref = nn.LSTMCell(N_IN, H).double()
    with torch.no_grad():  # torch's row order: input, forget, cell (candidate), output
        ref.weight_ih.copy_(torch.cat([wi_i, wi_f, layer.cand_in.weight, wi_o]))
        ref.weight_hh.copy_(torch.cat([wr_i, wr_f, layer.cand_rec[0].weight, wr_o]))
        ref.bias_ih.copy_(torch.cat([b_i, b_f, layer.cand_in.bias, b_o]))
        ref.bias_hh.zero_()
    g = torch.Generator().manual_seed(1)
    x, h, c = (torch.randn(B, n, generator=g, dtype=torch.float64) for n in (N_IN, H, H))
    h_new, c_new = layer(x, [h], 0, c)
    h_ref, c_ref = ref(x, (h, c))
    torch.testing.assert_close(h_new, h_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(c_new, c_ref, rtol=0, atol=1e-12)


def test_gru_layer_is_a_gru_cell():
    layer = _layer("gru")
    Wi, Wr, bi = layer.gates_in.weight, layer.gates_rec.weight, layer.gates_in.bias
    (wi_z, wi_r), (wr_z, wr_r), (b_z, b_r) = Wi.chunk(2), Wr.chunk(2), bi.chunk(2)
    ref = nn.GRUCell(N_IN, H).double()
    # Ours: h' = (1 - z) h + z n; torch: h' = (1 - z') n + z' h, so z' = 1 - z = sigmoid(-(...)).
    with torch.no_grad():  # torch's row order: reset, update, new
        ref.weight_ih.copy_(torch.cat([wi_r, -wi_z, layer.cand_in.weight]))
        ref.weight_hh.copy_(torch.cat([wr_r, -wr_z, layer.cand_rec[0].weight]))
        ref.bias_ih.copy_(torch.cat([b_r, -b_z, layer.cand_in.bias]))
        ref.bias_hh.zero_()
    g = torch.Generator().manual_seed(2)
    x, h = (torch.randn(B, n, generator=g, dtype=torch.float64) for n in (N_IN, H))
    h_new, c_new = layer(x, [h], 0, None)
    assert c_new is None
    torch.testing.assert_close(h_new, ref(x, h), rtol=0, atol=1e-12)
