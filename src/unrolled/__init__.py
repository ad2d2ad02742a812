"""unrolled: algorithm unrolling (deep unfolding) in PyTorch.

Every family in the library is the same triangle::

    data model  ->  classic iterative solver  ->  unrolled network

Subpackages
-----------
core
    Shared machinery: proximal operators, constrained parameters, metrics, the
    :class:`~unrolled.core.train.Trainer` and safetensors model I/O.
sparse_coding
    The Lasso / sparse coding family: ISTA, FISTA, IHT and LISTA, LISTA-CP,
    LISTA-CPSS, ALISTA, ISTA-LLT.
"""

__version__ = "0.1.0"
