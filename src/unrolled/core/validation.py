"""Input checks shared by solvers and networks.

Every public entry point validates its arguments with these helpers, so bad
input fails early with a :class:`ValueError` that names the argument.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

#: The dtypes solvers and nets compute in. Half precision (float16, bfloat16) is refused at the door: the
#: iterations need eigen/SVD routines and a dynamic range that it lacks (it overflows or fails inside torch).
SUPPORTED_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def check_dtype(name: str, x: Tensor) -> Tensor:
    """Refuse dtypes other than :data:`SUPPORTED_DTYPES` with a message naming ``name``."""
    if x.dtype not in SUPPORTED_DTYPES:
        kind = "half precision is not supported" if x.dtype in (torch.float16, torch.bfloat16) else "unsupported"
        raise ValueError(f"{name} has dtype {x.dtype} ({kind}); use float32 or float64 "
                         f"(or complex64/complex128 where complex data is allowed), e.g. {name}.double()")
    return x


def check_tensor(name: str, x, *, ndim: tuple[int, ...] | int | None = None, finite: bool = True) -> Tensor:
    """Check that ``x`` is a float32/float64 (or complex) tensor of an allowed rank with finite entries.

    Half precision (float16, bfloat16) is refused (see :data:`SUPPORTED_DTYPES`).
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not (x.is_floating_point() or x.is_complex()):
        raise ValueError(f"{name} must have a floating-point dtype, got {x.dtype}")
    check_dtype(name, x)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if x.dim() not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {tuple(x.shape)}")
    if finite and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def from_numpy(inputs):
    """Numpy arrays (alone or in a tuple/list) to tensors, as every entry point accepts them; others unchanged."""
    if isinstance(inputs, np.ndarray):
        return torch.from_numpy(inputs)
    if isinstance(inputs, (tuple, list)) and any(isinstance(t, np.ndarray) for t in inputs):
        return type(inputs)(torch.from_numpy(t) if isinstance(t, np.ndarray) else t for t in inputs)
    return inputs


def check_same_dtype_device(**tensors: Tensor) -> None:
    """Check that all named tensors share one dtype and one device."""
    items = list(tensors.items())
    name0, t0 = items[0]
    for name, t in items[1:]:
        if t.dtype != t0.dtype:
            raise ValueError(f"{name} has dtype {t.dtype} but {name0} has dtype {t0.dtype}; convert one of them")
        if t.device != t0.device:
            raise ValueError(f"{name} is on {t.device} but {name0} is on {t0.device}")


def check_positive(name: str, value, *, allow_zero: bool = False) -> float:
    """Check that a scalar is a finite positive number (or non-negative)."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got shape {tuple(value.shape)}")
        value = value.item()
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return v


def check_int(name: str, value, *, minimum: int = 0) -> int:
    """Check that ``value`` is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def as_batch(name: str, y: Tensor, dim: int) -> tuple[Tensor, bool]:
    """Turn a single ``(dim,)`` vector into a ``(1, dim)`` batch.

    Returns the batch and whether the input was unbatched, so callers can
    squeeze their output back.
    """
    check_tensor(name, y, ndim=(1, 2))
    if y.shape[-1] != dim:
        raise ValueError(f"{name} must have last dimension {dim}, got shape {tuple(y.shape)}")
    if y.dim() == 1:
        return y.unsqueeze(0), True
    return y, False
