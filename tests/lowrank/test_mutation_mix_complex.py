"""CORONA's linear layer on complex movies is the complex circular filtering it stands for.

:func:`~unrolled.lowrank.operators.mix` runs complex filters as one real convolution on the real and imaginary
parts (the block ``[[Re P, -Im P], [Im P, Re P]]``). The reference here is the complex sum written out with
:func:`torch.roll`: ``(P * X)[h, w] = sum_{a, b} P[a, b] X[h + a - r, w + b - r]`` (circular indices, ``r = k // 2``,
the cross-correlation of ``conv2d``), for complex ``P`` and ``X``, so a conjugated or transposed block fails.
"""

from __future__ import annotations

import torch

from unrolled.lowrank.operators import FILTER_NAMES, mix

C = torch.complex128


def _filter(P: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    k = P.shape[-1]
    r = k // 2
    out = torch.zeros_like(X)
    for a in range(k):
        for b in range(k):
            out = out + P[a, b] * torch.roll(X, shifts=(r - a, r - b), dims=(-2, -1))
    return out


def test_mix_on_complex_movies_is_complex_circular_filtering():
    g = torch.Generator().manual_seed(5)
    B, T, H, W, k = 2, 3, 7, 6, 3

    def cplx(*shape):
        return torch.complex(torch.randn(*shape, generator=g, dtype=torch.float64),
                             torch.randn(*shape, generator=g, dtype=torch.float64))

    L, S, D = cplx(B, T, H, W), cplx(B, T, H, W), cplx(B, T, H, W)
    P = {name: cplx(k, k) for name in FILTER_NAMES}
    out_L, out_S = mix(L, S, D, P)
    ref_L = _filter(P["P5"], L) + _filter(P["P3"], S) + _filter(P["P1"], D)
    ref_S = _filter(P["P6"], S) + _filter(P["P4"], L) + _filter(P["P2"], D)
    torch.testing.assert_close(out_L, ref_L, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out_S, ref_S, rtol=1e-12, atol=1e-12)
    # the same filters on real movies (the real branch) agree with the complex reference too
    Lr, Sr, Dr = L.real.contiguous(), S.real.contiguous(), D.real.contiguous()
    Pr = {name: p.real.contiguous() for name, p in P.items()}
    out_Lr, _ = mix(Lr, Sr, Dr, Pr)
    torch.testing.assert_close(out_Lr, (_filter(Pr["P5"], Lr) + _filter(Pr["P3"], Sr) + _filter(Pr["P1"], Dr)),
                               rtol=1e-12, atol=1e-12)
    # k = 1: the multiply-add branch
    P1 = {name: cplx(1, 1) for name in FILTER_NAMES}
    o1, _ = mix(L, S, D, P1)
    torch.testing.assert_close(o1, P1["P5"][0, 0] * L + P1["P3"][0, 0] * S + P1["P1"][0, 0] * D)
