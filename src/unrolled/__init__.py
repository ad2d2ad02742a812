"""unrolled: algorithm unrolling (deep unfolding) in PyTorch.

Every family in the library is the same triangle::

    data model  ->  classic iterative solver  ->  unrolled network

Subpackages
-----------
core
    The unrolling core (:class:`~unrolled.core.Iteration`, :func:`~unrolled.core.solve`,
    :class:`~unrolled.core.UnrolledNet`), proximal operators, constrained parameters,
    metrics, the :class:`~unrolled.core.train.Trainer`, safetensors model I/O and
    the registries the families fill in.
sparse_coding
    Lasso / sparse coding: ISTA, FISTA, IHT and LISTA, LISTA-CP, LISTA-CPSS, ALISTA, ISTA-LLT.
graph
    Graph source localization (blind deconvolution of diffusion): ADMM and SLoG-Net.
separation
    Sparse semi-blind source separation: PALM and LPALM.
sbl
    Sparse Bayesian learning: SBL (EM / MacKay updates) and the nets derived from it (SBLNet, GF-LSTM...).
classification
    l1-regularised logistic regression: IRLS-ADMM and the deep IRLS-ADMM net.
"""

__version__ = "0.1.0"
