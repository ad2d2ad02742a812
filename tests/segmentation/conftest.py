"""Shared fixtures: a naive dense numpy mean-field of the fully connected CRF, loops over pixel pairs, from eqs. (19)-(20)."""

from __future__ import annotations

import numpy as np
import pytest


def kernel_values(image: np.ndarray, gamma: float, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(K_spatial, K_bilateral)``, ``(N, N)`` each, for one ``(C, H, W)`` image (pixels in row-major order)."""
    C, H, W = image.shape
    N = H * W
    ks, kb = np.zeros((N, N)), np.zeros((N, N))
    for i in range(N):
        ri, ci = divmod(i, W)
        for j in range(N):
            rj, cj = divmod(j, W)
            dp = (ri - rj) ** 2 + (ci - cj) ** 2
            dc = sum((image[c, ri, ci] - image[c, rj, cj]) ** 2 for c in range(C))
            ks[i, j] = np.exp(-dp / (2 * gamma**2))
            kb[i, j] = np.exp(-dp / (2 * alpha**2) - dc / (2 * beta**2))
    return ks, kb


def mean_field_naive(unary: np.ndarray, image: np.ndarray, gamma: float, alpha: float, beta: float,
                     w: tuple[float, float], mu: np.ndarray, n_iter: int) -> list[np.ndarray]:
    """Iterates ``Q^1..Q^n`` (each ``(L, H, W)``) for one image; ``mu`` is ``(L, L)`` or ``(2, L, L)``."""
    L, H, W = unary.shape
    N = H * W
    ks, kb = kernel_values(image, gamma, alpha, beta)
    mus = (mu, mu) if mu.ndim == 2 else (mu[0], mu[1])
    U = unary.reshape(L, N)
    Q = np.exp(U - U.max(0)) / np.exp(U - U.max(0)).sum(0)
    out = []
    for _ in range(n_iter):
        new = np.zeros((L, N))
        for i in range(N):
            msg = [np.zeros(L), np.zeros(L)]
            for j in range(N):
                if j != i:
                    msg[0] += ks[i, j] * Q[:, j]
                    msg[1] += kb[i, j] * Q[:, j]
            pair = w[0] * mus[0] @ msg[0] + w[1] * mus[1] @ msg[1]
            e = -(-U[:, i]) - pair  # exp{-phi - Q_hat}, phi = -U
            e = np.exp(e - e.max())
            new[:, i] = e / e.sum()
        Q = new
        out.append(Q.reshape(L, H, W).copy())
    return out


def free_energy_naive(Q: np.ndarray, unary: np.ndarray, image: np.ndarray, gamma: float, alpha: float,
                      beta: float, w: tuple[float, float], mu: np.ndarray) -> float:
    """:math:`\\sum_i <Q_i, \\log Q_i - U_i> + \\sum_{i<j} Q_i^T \\mu Q_j \\sum_m w^m G^m_{ij}` (symmetric ``mu``)."""
    L, H, W = unary.shape
    N = H * W
    ks, kb = kernel_values(image, gamma, alpha, beta)
    q, U = Q.reshape(L, N), unary.reshape(L, N)
    energy = float(np.sum(q * (np.log(q) - U)))
    for i in range(N):
        for j in range(i + 1, N):
            energy += (w[0] * ks[i, j] + w[1] * kb[i, j]) * float(q[:, i] @ mu @ q[:, j])
    return energy


class _Naive:
    kernel_values = staticmethod(kernel_values)
    mean_field = staticmethod(mean_field_naive)
    free_energy = staticmethod(free_energy_naive)


@pytest.fixture
def naive() -> _Naive:
    """The naive numpy reference (kernel values, mean-field iterates, free energy)."""
    return _Naive()
