"""Tests of the shared input checks: good input passes, bad input names the argument."""

import math

import numpy as np
import pytest
import torch

from unrolled.core.validation import (
    as_batch,
    check_int,
    check_positive,
    check_same_dtype_device,
    check_tensor,
)

# --------------------------------------------------------------------------
# check_tensor
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x",
    [
        torch.zeros(3),
        torch.ones(2, 3, dtype=torch.float64),
        torch.ones(4, dtype=torch.complex64),
        torch.ones(4, dtype=torch.complex128),
    ],
)
def test_check_tensor_accepts_floating_and_complex(x):
    assert check_tensor("x", x) is x


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_check_tensor_refuses_half_precision_naming_the_argument(dtype):
    with pytest.raises(ValueError, match=r"^y has dtype .*half precision is not supported"):
        check_tensor("y", torch.ones(2, 2, dtype=dtype))


@pytest.mark.parametrize(
    "bad",
    [
        [1.0, 2.0],
        np.ones(3),
        3.0,
        None,
        torch.ones(3, dtype=torch.int64),
        torch.ones(3, dtype=torch.int32),
        torch.ones(3, dtype=torch.bool),
        torch.tensor([1.0, math.nan]),
        torch.tensor([1.0, math.inf]),
        torch.tensor([[-math.inf]], dtype=torch.float64),
        torch.tensor([complex(1.0, math.nan)]),
    ],
)
def test_check_tensor_rejects_and_names_argument(bad):
    with pytest.raises(ValueError, match="my_arg"):
        check_tensor("my_arg", bad)


def test_check_tensor_ndim():
    assert check_tensor("y", torch.zeros(2, 3), ndim=2).shape == (2, 3)
    check_tensor("y", torch.zeros(3), ndim=(1, 2))
    check_tensor("y", torch.zeros(2, 3), ndim=(1, 2))
    with pytest.raises(ValueError, match="y"):
        check_tensor("y", torch.zeros(3), ndim=2)
    with pytest.raises(ValueError, match="y"):
        check_tensor("y", torch.zeros(1, 2, 3), ndim=(1, 2))
    with pytest.raises(ValueError, match="y"):
        check_tensor("y", torch.tensor(1.0), ndim=1)


def test_check_tensor_finite_flag():
    x = torch.tensor([math.nan, math.inf])
    assert check_tensor("x", x, finite=False) is x


# --------------------------------------------------------------------------
# check_same_dtype_device
# --------------------------------------------------------------------------


def test_check_same_dtype_device_accepts_matching():
    check_same_dtype_device(a=torch.zeros(2), b=torch.ones(3, 3), c=torch.zeros(1))
    check_same_dtype_device(a=torch.zeros(2))


def test_check_same_dtype_device_rejects_dtype_mismatch_naming_both():
    with pytest.raises(ValueError) as info:
        check_same_dtype_device(matrix=torch.zeros(2, dtype=torch.float64), vec=torch.zeros(2, dtype=torch.float32))
    assert "vec" in str(info.value) and "matrix" in str(info.value)
    with pytest.raises(ValueError, match="third"):
        check_same_dtype_device(
            first=torch.zeros(2), second=torch.zeros(2), third=torch.zeros(2, dtype=torch.float64)
        )


def test_check_same_dtype_device_rejects_device_mismatch():
    with pytest.raises(ValueError, match="b"):
        check_same_dtype_device(a=torch.zeros(2), b=torch.zeros(2, device="meta"))


# --------------------------------------------------------------------------
# check_positive
# --------------------------------------------------------------------------


@pytest.mark.parametrize("value,expected", [(1, 1.0), (0.5, 0.5), (1e-300, 1e-300), (torch.tensor(2.5), 2.5),
                                            (torch.tensor([3.0]), 3.0), (np.float64(4.0), 4.0)])
def test_check_positive_accepts_and_returns_float(value, expected):
    out = check_positive("lam", value)
    assert isinstance(out, float)
    assert out == expected


@pytest.mark.parametrize(
    "bad", [0, 0.0, -1.0, -1e-300, math.nan, math.inf, -math.inf, "abc", None, [1.0], torch.ones(2), torch.tensor(-1.0)]
)
def test_check_positive_rejects_and_names_argument(bad):
    with pytest.raises(ValueError, match="lam"):
        check_positive("lam", bad)


def test_check_positive_allow_zero():
    assert check_positive("tol", 0.0, allow_zero=True) == 0.0
    assert check_positive("tol", 0.1, allow_zero=True) == 0.1
    with pytest.raises(ValueError, match="tol"):
        check_positive("tol", -0.1, allow_zero=True)
    with pytest.raises(ValueError, match="tol"):
        check_positive("tol", math.nan, allow_zero=True)


# --------------------------------------------------------------------------
# check_int
# --------------------------------------------------------------------------


def test_check_int_accepts():
    assert check_int("n", 0) == 0
    assert check_int("n", 7) == 7
    assert check_int("n", 5, minimum=5) == 5
    assert check_int("n", -2, minimum=-3) == -2


@pytest.mark.parametrize("bad", [True, False, 3.0, 2.5, "3", None, torch.tensor(3)])
def test_check_int_rejects_non_int_and_bool(bad):
    with pytest.raises(ValueError, match="n_layers"):
        check_int("n_layers", bad)


def test_check_int_minimum():
    with pytest.raises(ValueError, match="n_layers"):
        check_int("n_layers", -1)
    with pytest.raises(ValueError, match="n_layers"):
        check_int("n_layers", 0, minimum=1)


# --------------------------------------------------------------------------
# as_batch
# --------------------------------------------------------------------------


def test_as_batch_unbatched_round_trip():
    y = torch.randn(5, dtype=torch.float64)
    yb, unbatched = as_batch("y", y, 5)
    assert unbatched is True
    assert yb.shape == (1, 5)
    torch.testing.assert_close(yb.squeeze(0), y, rtol=0, atol=0)


def test_as_batch_batched_is_passed_through():
    y = torch.randn(3, 5)
    yb, unbatched = as_batch("y", y, 5)
    assert unbatched is False
    assert yb is y


@pytest.mark.parametrize(
    "bad",
    [
        torch.randn(4),
        torch.randn(2, 4),
        torch.randn(2, 3, 5),
        torch.randn(()),
        torch.ones(5, dtype=torch.int64),
        torch.tensor([0.0, 1.0, math.nan, 0.0, 0.0]),
        np.zeros(5),
    ],
)
def test_as_batch_rejects_and_names_argument(bad):
    with pytest.raises(ValueError, match="measurements"):
        as_batch("measurements", bad, 5)
