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
imaging
    Images through matrix-free operators: compressive MRI (ADMM, ADMM-CSNet) and blind deblurring (HQS, DUBLID).
lowrank
    Convolutional robust PCA of ultrasound-like movies: ISTA/FISTA and CORONA.
nmf
    Sparse beta-NMF by multiplicative updates and deep unrolled NMF for speech enhancement.
segmentation
    Fully connected CRF mean-field inference and CRF-RNN.
pretrained
    Trained nets shipped in the package: ``list_pretrained()``, ``load_pretrained(name)``.
experiments
    The reproductions of the papers' tables and figures, and the benchmarks.

Every subpackage is imported on first access (``import unrolled; unrolled.graph`` works), so
``import unrolled`` itself stays cheap.
"""

import importlib

__version__ = "0.1.0"

#: The subpackages, in the order of the docstring (each imported lazily by ``unrolled.<name>``).
SUBPACKAGES = ("core", "sparse_coding", "graph", "separation", "sbl", "classification", "imaging", "lowrank", "nmf",
               "segmentation", "pretrained", "experiments")
__all__ = ["__version__", *SUBPACKAGES]


def __getattr__(name: str):
    if name in SUBPACKAGES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(SUBPACKAGES))
