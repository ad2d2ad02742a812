"""Checks that an unrolled net is the algorithm it came from (for users' own iterations and the contract suite).

The central invariant of the library: a net whose parameters hold the
algorithm's values computes, layer by layer, the iterates of its solver.
:func:`equivalence_gaps` measures it and :func:`assert_untrained_equals_solver`
asserts it::

    from functools import partial
    from unrolled.core import solve
    from unrolled.core.testing import assert_untrained_equals_solver

    run = partial(solve, MyIteration(), data, params)   # run(max_iter=, tol=, callback=)
    assert_untrained_equals_solver(net, inputs, run, atol=1e-10)
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

RunSolver = Callable[..., Any]


def _as_tensor(output) -> Tensor:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return torch.cat([o.reshape(o.shape[0], -1) for o in output], dim=-1)
    raise TypeError(f"cannot compare a net output of type {type(output).__name__}")


def solver_iterates(run_solver: RunSolver, n_iter: int) -> tuple[list[Tensor], Any]:
    """The first ``n_iter`` iterates of a solver (``tol=0``) and its result.

    ``run_solver(max_iter=, tol=, callback=)`` runs the solver; every
    ``callback(k, estimate)`` is recorded (cloned).
    """
    iterates: list[Tensor] = []

    def record(k: int, estimate) -> None:
        if k != len(iterates) + 1:
            raise AssertionError(f"callback got iteration {k} after {len(iterates)} iterations")
        iterates.append(_as_tensor(estimate).detach().clone())

    result = run_solver(max_iter=n_iter, tol=0.0, callback=record)
    return iterates, result


def equivalence_gaps(net: torch.nn.Module, inputs, run_solver: RunSolver, *,
                     compare: Callable[[Any], Any] | None = None) -> list[float]:
    """Per layer ``k = 1..K``, the largest ``|net layer k - solver iterate k|``.

    Parameters
    ----------
    net : UnrolledNet
        The untrained net (``K = net.active_layers`` layers are compared).
    inputs
        What ``net(inputs)`` takes.
    run_solver : callable
        ``run_solver(max_iter=, tol=, callback=)`` runs the algorithm on the same
        problems (``callback(k, estimate)`` after every iteration).
    compare : callable, optional
        Maps a net layer output to the form of the solver's estimate.
    """
    K = net.active_layers
    with torch.no_grad():
        layers = net(inputs, return_layers=True)
    if len(layers) != K:
        raise AssertionError(f"return_layers gave {len(layers)} outputs for {K} active layers")
    iterates, _ = solver_iterates(run_solver, K)
    if len(iterates) != K:
        raise AssertionError(f"the solver reported {len(iterates)} iterations, expected {K} (tol=0)")
    gaps = []
    for out, it in zip(layers, iterates):
        out = _as_tensor(compare(out) if compare is not None else out)
        if out.shape != it.shape:
            raise AssertionError(f"net layer output {tuple(out.shape)} vs solver estimate {tuple(it.shape)}")
        gaps.append(float((out.to(it.dtype) - it).abs().max()) if out.numel() else 0.0)
    return gaps


def assert_untrained_equals_solver(net: torch.nn.Module, inputs, run_solver: RunSolver, *, atol: float = 1e-10,
                                   compare: Callable[[Any], Any] | None = None) -> list[float]:
    """Assert that every layer of ``net`` equals the matching solver iterate within ``atol``; returns the gaps."""
    gaps = equivalence_gaps(net, inputs, run_solver, compare=compare)
    bad = [(k + 1, g) for k, g in enumerate(gaps) if not g <= atol]
    if bad:
        raise AssertionError(f"net layers differ from solver iterates by more than {atol:g}: "
                             + ", ".join(f"layer {k}: {g:.3g}" for k, g in bad))
    return gaps
