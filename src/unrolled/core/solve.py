r"""The one batched loop behind every classic solver of the library.

:func:`solve` runs an :class:`~unrolled.core.iteration.Iteration` with fixed
parameters on many problems at once. Each problem stops at the first
iteration where its own criterion is below ``tol``; its whole state is then
frozen (recorded and never updated again), and frozen problems are dropped
from the working set in bulk (once they are at least 1/8 of it), so the
tensors are not copied at every iteration.

History
-------
One format for every solver: ``history['criterion']`` holds, per iteration,
the batch maximum of the stopping criterion, and ``history['objective']``
(when the iteration has an objective) the batch mean of the objective;
frozen problems count with their frozen values. Both are plain lists of
floats, gathered with one host synchronisation per iteration.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import Tensor

from unrolled.core.iteration import Data, Iteration, State
from unrolled.core.result import SolverResult
from unrolled.core.validation import check_int, check_positive

Callback = Callable[[int, Tensor], None]


def _batch_size(state: State, iteration: Iteration) -> tuple[int, torch.device, torch.dtype]:
    if not state:
        raise ValueError(f"{iteration.name}.init returned an empty state")
    first = next(iter(state.values()))
    B = first.shape[0]
    for key, t in state.items():
        if t.shape[0] != B:
            raise ValueError(f"{iteration.name}: state entry {key!r} has {t.shape[0]} rows, expected {B} (batch-first)")
    # statistics (criterion, objective) are real: the first real floating entry's dtype
    real = next((t.dtype for t in state.values() if t.is_floating_point()), None)
    if real is None:
        real = next((t.real.dtype for t in state.values() if t.is_complex()), torch.float64)
    return B, first.device, real


def _take(mapping: Mapping[str, Any], keys, index: Tensor) -> dict:
    out = dict(mapping)
    for key in keys:
        value = out.get(key)
        if isinstance(value, Tensor) and value.dim() > 0:
            out[key] = value[index]
    return out


def solve(
    iteration: Iteration,
    data: Data,
    params: Mapping[str, Any],
    *,
    max_iter: int,
    tol: float,
    callback: Callback | None = None,
    track: bool | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
) -> SolverResult:
    r"""Run ``iteration`` to convergence on a batch of problems.

    Parameters
    ----------
    iteration : Iteration
        The algorithm (its :meth:`~unrolled.core.iteration.Iteration.criterion`
        is the stopping test).
    data : dict
        The problems: batch-first tensors under the keys of
        ``iteration.batched``, shared tensors under the others.
    params : mapping, or callable ``k -> mapping``
        Value of each parameter: the same at every iteration, or a schedule
        giving those of 0-based iteration ``k`` (e.g. LISTA-CPSS's growing
        support-selection fraction). In a mapping, parameters named in
        ``iteration.batched_params`` may be per-problem tensors ``(B, ...)``.
    max_iter : int
        Iteration cap (``>= 1``).
    tol : float
        Tolerance (``>= 0``): a problem converges at the first iteration where
        its criterion is strictly below ``tol``. ``tol=0`` runs exactly
        ``max_iter`` iterations.
    callback : callable, optional
        ``callback(k, estimate)`` after iteration ``k`` (1-based) with the
        estimate of the whole batch, converged problems at their frozen value.
        It must not modify ``estimate``.
    track : bool, optional
        Compute the criterion and objective at every iteration (for ``history``
        and the divergence check). ``None`` (default): only when ``tol > 0``,
        where stopping needs them; with ``tol=0`` and ``track`` off the loop
        runs ``max_iter`` bare steps with no host synchronisation,
        ``history`` lists stay empty, ``converged`` is all ``False``, and
        non-finite final iterates raise :class:`FloatingPointError`.
    chunk_size : int, optional
        Solve at most this many problems at a time (bounds the memory of very
        large batches); the results are concatenated and ``history`` is that
        of the whole batch (per iteration: the mean objective and the maximum
        criterion, problems of finished chunks at their frozen values). Not
        with ``callback`` (which sees the whole batch at each iteration).
    progress : bool, default False
        A progress bar over the chunks.

    Returns
    -------
    SolverResult
        ``x`` (the readout), ``n_iter`` and ``converged`` ``(B,)``, ``history``
        and ``state`` (the final, per-problem frozen state, for solvers that
        return more than one estimate).

    Raises
    ------
    FloatingPointError
        When the criterion or the objective of a live problem becomes NaN (or
        the objective infinite): the iterates have diverged.

    Notes
    -----
    Runs under :func:`torch.no_grad`; the state stays on the device of the
    data, with one host synchronisation per iteration.
    """
    max_iter = check_int("max_iter", max_iter, minimum=1)
    tol = check_positive("tol", tol, allow_zero=True)
    track = tol > 0 if track is None else bool(track)
    if tol > 0 and not track:
        raise ValueError("track=False needs tol=0: the stopping test is the criterion")
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, minimum=1)
        if callback is not None:
            raise ValueError("chunk_size cannot be combined with callback (which sees the whole batch)")
    with torch.no_grad():
        params = params if callable(params) else dict(params)
        B = _data_batch_size(iteration, data)
        if chunk_size is not None and B is not None and B > chunk_size:
            return _chunked(iteration, dict(data), params, max_iter, tol, track, B, chunk_size, progress)
        if not track:
            return _run_bare(iteration, dict(data), params, max_iter, callback)
        return _solve(iteration, dict(data), params, max_iter, tol, callback)


def _data_batch_size(iteration: Iteration, data: Data) -> int | None:
    for key in iteration.batched:
        value = data.get(key)
        if isinstance(value, Tensor) and value.dim() > 0:
            return value.shape[0]
    return None


def _chunked(iteration: Iteration, data: Data, params, max_iter: int, tol: float, track: bool, B: int,
             chunk: int, progress: bool) -> SolverResult:
    """:func:`solve` one chunk of problems at a time; concatenate, and merge the histories."""
    from tqdm.auto import tqdm

    parts = []
    starts = range(0, B, chunk)
    for start in tqdm(starts, desc=f"{iteration.name} ({B} problems)", disable=not progress, leave=False):
        index = torch.arange(start, min(B, start + chunk))
        sub_data = _take(data, iteration.batched, index)
        sub_params = params if callable(params) else _take(params, iteration.batched_params, index)
        if track:
            part = _solve(iteration, sub_data, sub_params, max_iter, tol, None)
        else:
            part = _run_bare(iteration, sub_data, sub_params, max_iter, None)
        parts.append((len(index), part))
    history: dict[str, list[float]] = {}
    for key, combine in (("objective", "mean"), ("criterion", "max")):
        if any(key not in r.history for _, r in parts):  # an iteration without an objective
            continue
        series = [(n, r.history[key]) for n, r in parts]
        if not all(h for _, h in series):  # untracked (tol=0) runs record nothing
            history[key] = []
            continue
        length = max(len(h) for _, h in series)
        padded = [(n, h + [h[-1]] * (length - len(h))) for n, h in series]  # finished chunks stay frozen
        if combine == "mean":
            history[key] = [sum(n * h[i] for n, h in padded) / B for i in range(length)]
        else:
            history[key] = [max(h[i] for _, h in padded) for i in range(length)]
    results = [r for _, r in parts]
    state = {key: torch.cat([r.state[key] for r in results]) for key in results[0].state}
    return SolverResult(x=torch.cat([r.x for r in results]), n_iter=torch.cat([r.n_iter for r in results]),
                        converged=torch.cat([r.converged for r in results]), history=history, state=state)


def _run_bare(iteration: Iteration, data: Data, params, max_iter: int, callback: Callback | None) -> SolverResult:
    """``max_iter`` steps with no stopping test and no statistics (``tol=0`` without tracking)."""
    schedule = params if callable(params) else None
    state = iteration.init(data, schedule(0) if schedule is not None else params)
    B, device, _ = _batch_size(state, iteration)
    for it in range(1, max_iter + 1):
        state = iteration.step(it - 1, state, data, schedule(it - 1) if schedule is not None else params)
        if callback is not None:
            callback(it, iteration.readout(state, data))
    x = iteration.readout(state, data)
    if B and not bool(torch.isfinite(x).all()):  # the one check (and host sync) of a bare run
        raise FloatingPointError(
            f"{iteration.name} diverged within {max_iter} iterations: non-finite iterates "
            f"(a step size too large for the problem's scale, or data of a dtype too narrow for it)"
        )
    return SolverResult(x=x,
                        n_iter=torch.full((B,), max_iter if B else 0, dtype=torch.int64, device=device),
                        converged=torch.zeros(B, dtype=torch.bool, device=device),
                        history={"objective": [], "criterion": []}, state=state)


def _solve(iteration: Iteration, data: Data, params, max_iter: int, tol: float,
           callback: Callback | None) -> SolverResult:
    schedule = params if callable(params) else None
    if schedule is not None:
        params = schedule(0)
    state = iteration.init(data, params)
    B, device, dtype = _batch_size(state, iteration)
    n_iter = torch.full((B,), max_iter, dtype=torch.int64, device=device)
    converged = torch.zeros(B, dtype=torch.bool, device=device)
    history: dict[str, list[float]] = {"objective": [], "criterion": []}
    out_state = {key: t.clone() for key, t in state.items()}
    if B == 0:
        n_iter.zero_()
        return SolverResult(x=iteration.readout(out_state, data), n_iter=n_iter, converged=converged,
                            history=history, state=out_state)

    data_full, params_full = data, params
    obj_all = torch.zeros(B, dtype=dtype, device=device)
    crit_all = torch.zeros(B, dtype=dtype, device=device)
    has_objective = True
    # Working set: rows still iterated. ``orig`` maps them to the batch, ``live``
    # marks those not yet converged (frozen rows linger until compaction).
    orig = torch.arange(B, device=device)
    live = torch.ones(B, dtype=torch.bool, device=device)
    n_live = B
    out_estimate = None  # readout of out_state, refreshed when problems freeze (callbacks only)

    for it in range(1, max_iter + 1):
        if schedule is not None:
            params = schedule(it - 1)
        new = iteration.step(it - 1, state, data, params)
        crit = iteration.criterion(new, state, data, params)
        obj = iteration.objective(new, data, params) if has_objective else None
        if obj is None:
            has_objective = False
        all_live = n_live == live.numel()
        if all_live:
            crit_all[orig] = crit
            if obj is not None:
                obj_all[orig] = obj
            done = crit < tol
        else:
            crit_all[orig] = torch.where(live, crit, crit_all[orig])
            if obj is not None:
                obj_all[orig] = torch.where(live, obj, obj_all[orig])
            done = (crit < tol) & live
        stats = torch.stack([obj_all.mean(), crit_all.max(), done.sum().to(dtype)]).tolist()
        if has_objective:
            history["objective"].append(stats[0])
        history["criterion"].append(stats[1])
        if stats[1] != stats[1] or (has_objective and not abs(stats[0]) < float("inf")):
            raise FloatingPointError(
                f"{iteration.name} diverged at iteration {it}: non-finite criterion or objective "
                f"(a step size too large for the problem's scale, or data of a dtype too narrow for it)"
            )

        if callback is not None:
            estimate = iteration.readout(new, data)
            if n_live < B:
                if out_estimate is None:
                    out_estimate = iteration.readout(out_state, data_full)
                full = out_estimate.clone()
                full[orig[live]] = estimate[live]
                estimate = full
            callback(it, estimate)

        state = new
        n_done = int(stats[2])
        if n_done:
            finished = orig[done]
            for key, t in state.items():
                out_state[key][finished] = t[done]
            n_iter[finished] = it
            converged[finished] = True
            n_live -= n_done
            out_estimate = None
            if n_live == 0:
                break
            live = live & ~done
            if 8 * (live.numel() - n_live) >= live.numel():
                orig = orig[live]
                state = {key: t[live] for key, t in state.items()}
                data = _take(data, iteration.batched, live)
                if schedule is None:
                    params = _take(params, iteration.batched_params, live)
                live = live[live]

    if n_live > 0:
        rows = orig[live]
        for key, t in state.items():
            out_state[key][rows] = t[live]
    if not has_objective:
        history.pop("objective")
    return SolverResult(x=iteration.readout(out_state, data_full), n_iter=n_iter, converged=converged,
                        history=history, state=out_state)
