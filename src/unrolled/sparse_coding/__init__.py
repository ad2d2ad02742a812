"""Sparse coding: the Lasso, its classic solvers and the LISTA family of unrolled networks."""

from unrolled.sparse_coding.alista_weight import analytic_weight, generalized_coherence
from unrolled.sparse_coding.data import SparseCodingProblem, gaussian_dictionary, lipschitz_constant
from unrolled.sparse_coding.lasso import lasso
from unrolled.sparse_coding.nets import ALISTA, ISTALLT, LISTA, LISTACP, LISTACPSS, NETWORKS, support_fractions

__all__ = [
    "SparseCodingProblem",
    "gaussian_dictionary",
    "lipschitz_constant",
    "lasso",
    "LISTA",
    "LISTACP",
    "LISTACPSS",
    "ALISTA",
    "ISTALLT",
    "NETWORKS",
    "support_fractions",
    "analytic_weight",
    "generalized_coherence",
]
