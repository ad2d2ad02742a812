"""The bad-input battery (issue 29): every public solver and every registered net, fed what a careless or
hostile user would feed them.

Each case must raise a ``ValueError`` or ``TypeError`` whose message names the argument at fault
(``clean``); an error of another type or one that does not name the argument is ``unclear``; no error
is ``silent``. The nets are covered through :data:`unrolled.core.registry.NETS` (a new net is covered by
registering); the solvers are listed by family below.

Run ``python tests/test_bad_inputs.py`` for the counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch
from torch import Tensor

from unrolled.core.registry import NETS

NET_NAMES = sorted(NETS)
BATCH = 4


@dataclass
class BadCase:
    id: str
    call: Callable[[], object]
    names: tuple[str, ...]  # the error must name one of these
    errors: tuple[type, ...] = (ValueError, TypeError)
    accept: Callable[[object], bool] | None = None  # a valid input after all: the result must pass this


def _named(message: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message) is not None


def classify(case: BadCase) -> tuple[str, str]:
    """``('clean' | 'unclear' | 'silent', detail)``."""
    try:
        result = case.call()
    except case.errors as e:
        if any(_named(str(e), n) for n in case.names):
            return "clean", f"{type(e).__name__}: {e}"
        return "unclear", f"{type(e).__name__} not naming {case.names}: {e}"
    except Exception as e:  # noqa: BLE001 - any other error is the thing being measured
        return "unclear", f"{type(e).__name__}: {e}"
    if case.accept is not None:
        return ("clean", "accepted") if case.accept(result) else ("silent", f"accepted, but a wrong result {result}")
    return "silent", "no error"


# ------------------------------------------------------------------ input variations
def _nan(t: Tensor) -> Tensor:
    t = t.clone()
    t.reshape(-1)[0] = float("nan")
    return t


def _inf(t: Tensor) -> Tensor:
    t = t.clone()
    t.reshape(-1)[-1] = float("inf")
    return t


VARIANTS: dict[str, Callable[[Tensor], object]] = {
    "nan": _nan,
    "inf": _inf,
    "float16": lambda t: t.to(torch.float16),
    "bfloat16": lambda t: t.to(torch.bfloat16),
    "int64": lambda t: t.round().to(torch.int64),
    "extra-dims": lambda t: t[None, None],
    "no-dims": lambda t: t.reshape(-1)[0],
    "list": lambda t: "not a tensor",
}


def _empty_result(result) -> bool:
    """An empty batch is a valid input of a solver (``solve`` returns at once): the result must be empty too."""
    x = getattr(result, "x", None)
    if x is None:
        x = next(v for v in vars(result).values() if isinstance(v, Tensor))
    return x.shape[0] == 0


# ------------------------------------------------------------------ solvers
def _solver_setups():
    """``(solver name, fn, kwargs of valid tensors, other kwargs, {arg: (kind, mismatch)}, partners)``.

    Per argument: ``'batch'`` (batch-first data; an empty batch is valid), ``'labels'`` (any real dtype
    accepted) and a function making its size inconsistent with the other arguments (or ``None``); a
    size mismatch may be reported under the partner argument's name (``partners[arg]``).
    """
    g = torch.Generator().manual_seed(0)
    setups = []

    from unrolled.sparse_coding.solvers import fista, iht, ista

    A = torch.randn(10, 20, generator=g, dtype=torch.float64)
    y = torch.randn(BATCH, 10, generator=g, dtype=torch.float64)
    for name, fn, extra in (("ista", ista, {"lam": 0.1}), ("fista", fista, {"lam": 0.1}), ("iht", iht, {"k": 3})):
        setups.append((name, fn, {"y": y, "A": A}, {**extra, "max_iter": 5},
                       {"y": ("batch", lambda t: t[..., :-1]), "A": (None, lambda t: t[:-1])}, {"A": "y"}))

    from unrolled.separation import palm

    spec = NETS["lpalm"]
    X = spec.problem(seed=0, small=True).sample(BATCH, torch.Generator().manual_seed(1))[0]
    setups.append(("palm", palm, {"X": X}, {"n_sources": 3, "max_iter": 5},
                   {"X": ("batch", None)}, {}))  # any (m, t) is a valid mixture

    from unrolled.sbl import sbl

    prob = NETS["sbl-net"].problem(seed=0, small=True)
    ys = prob.sample(BATCH, torch.Generator().manual_seed(1))[0]
    setups.append(("sbl", sbl, {"y": ys, "Phi": prob.Phi}, {"lam": 0.1, "max_iter": 5},
                   {"y": ("batch", lambda t: t[..., :-1]), "Phi": (None, lambda t: t[:-1])}, {"Phi": "y"}))

    from unrolled.classification import irls_admm

    (Xc, yc), _ = NETS["deep-irls-admm"].problem(seed=0, small=True).sample(BATCH, torch.Generator().manual_seed(1))
    setups.append(("irls_admm", irls_admm, {"X": Xc, "y": yc}, {"max_iter": 3},
                   {"X": ("batch", lambda t: t[:, :-1]), "y": ("labels", lambda t: t[..., :-1])}, {"X": "y", "y": "X"}))

    from unrolled.graph import admm
    from unrolled.graph.data import GraphDiffusionProblem

    gp = GraphDiffusionProblem("er", n_nodes=8, n_signals=6, L=3, graph_seed=0, dtype=torch.float64)
    Y = gp.sample(BATCH, torch.Generator().manual_seed(1))[0]
    setups.append(("admm", admm, {"Y": Y, "S": gp.S}, {"max_iter": 5},
                   {"Y": ("batch", lambda t: t[:, :-1]), "S": (None, lambda t: t[:-1])}, {"Y": "S", "S": "Y"}))

    from unrolled.segmentation import mean_field

    (unary, image), _ = NETS["crf-rnn"].problem(seed=0, small=True).sample(BATCH, torch.Generator().manual_seed(1))
    setups.append(("mean_field", mean_field, {"unary": unary, "image": image}, {"max_iter": 3},
                   {"unary": ("batch", lambda t: t[..., :-1]), "image": ("batch", lambda t: t[..., :-1])},
                   {"unary": "image", "image": "unary"}))
    return setups


def solver_cases() -> list[BadCase]:
    cases = []
    for name, fn, tensors, other, kinds, partners in _solver_setups():
        for arg, value in tensors.items():
            kind, mismatch = kinds[arg]
            variants = {**VARIANTS, **({"wrong-size": mismatch} if mismatch is not None else {})}
            if kind == "labels":  # labels in {-1, +1} of any real dtype are converted
                variants = {k: v for k, v in variants.items() if k not in ("float16", "bfloat16", "int64")}
            if kind == "batch":
                variants["empty-batch"] = lambda t: t[:0]
            for vname, make in variants.items():
                def call(fn=fn, tensors=tensors, other=other, arg=arg, make=make):
                    return fn(**{**tensors, arg: make(tensors[arg])}, **other)

                accept = _empty_result if vname == "empty-batch" else None
                names = (arg, partners[arg]) if vname == "wrong-size" and arg in partners else (arg,)
                cases.append(BadCase(f"{name}-{arg}-{vname}", call, names, accept=accept))
        for key, bad in (("max_iter", 0), ("max_iter", 2.5), ("tol", -1.0), ("tol", float("nan"))):
            def call(fn=fn, tensors=tensors, other=other, key=key, bad=bad):
                return fn(**tensors, **{**other, key: bad})

            cases.append(BadCase(f"{name}-{key}={bad}", call, (key,)))
        if name == "irls_admm":
            X, y = tensors["X"], tensors["y"]
            cases.append(BadCase("irls_admm-0-samples", lambda fn=fn, X=X, y=y: fn(X[:, :0], y[:, :0], max_iter=3),
                                 ("X",)))
            cases.append(BadCase("irls_admm-0-features", lambda fn=fn, X=X, y=y: fn(X[..., :0], y, max_iter=3),
                                 ("X",)))
        if name == "sbl":
            cases.append(BadCase("sbl-lam=-1", lambda fn=fn, t=tensors: fn(**t, lam=-1.0, max_iter=5), ("lam",)))
        if name in ("ista", "fista"):
            cases.append(BadCase(f"{name}-lam=-1", lambda fn=fn, t=tensors: fn(**t, lam=-1.0, max_iter=5), ("lam",)))
            cases.append(BadCase(f"{name}-step=-1", lambda fn=fn, t=tensors: fn(**t, lam=0.1, step=-1.0, max_iter=5),
                                 ("step",)))
    return cases


def _ista_step_too_large():
    from unrolled.sparse_coding.solvers import ista

    g = torch.Generator().manual_seed(0)
    A = torch.randn(10, 20, generator=g, dtype=torch.float64)
    y = torch.randn(3, 10, generator=g, dtype=torch.float64)
    L = torch.linalg.matrix_norm(A, 2) ** 2
    return ista(y, A, 0.1, step=float(100 / L), max_iter=2000, tol=0.0)


# ------------------------------------------------------------------ nets
class NetCase:
    def __init__(self, name: str):
        self.spec = NETS[name]
        self.problem = self.spec.problem(seed=0, small=True)
        self.inputs, self.targets = self.problem.sample(BATCH, torch.Generator().manual_seed(1))

    def net(self, n_layers=3):
        return self.spec.from_algorithm(self.problem, n_layers, False, dict(self.spec.options))


def _with_first(inputs, value):
    return value if isinstance(inputs, Tensor) else type(inputs)((value, *inputs[1:]))


def _first(inputs) -> Tensor:
    return inputs if isinstance(inputs, Tensor) else inputs[0]


def net_cases(name: str) -> list[BadCase]:
    c = NetCase(name)
    cases = []
    for bad in (0, -1, 2.5, True, "3", None):
        cases.append(BadCase(f"{name}-n_layers={bad!r}", lambda bad=bad: c.net(bad), ("n_layers",)))
    net = c.net()
    x = _first(c.inputs)
    for vname in ("float16", "bfloat16", "inf", "no-dims", "list"):
        make = VARIANTS[vname]
        cases.append(BadCase(f"{name}-forward-{vname}", lambda make=make: net(_with_first(c.inputs, make(x))),
                             (c.spec.input_name,)))
    if name == "deep-irls-admm":
        X, y = c.inputs
        cases.append(BadCase(f"{name}-forward-0-samples", lambda: net((X[:, :0], y[:, :0])), ("X",)))
    if torch.cuda.is_available():
        cases.append(BadCase(f"{name}-forward-wrong-device",
                             lambda: net(_with_first(c.inputs, x.cuda())), (c.spec.input_name,)))
    return cases


def all_cases() -> list[BadCase]:
    cases = solver_cases()
    for name in NET_NAMES:
        cases += net_cases(name)
    return cases


# ------------------------------------------------------------------ the tests
SOLVER_CASES = solver_cases()


@pytest.mark.parametrize("case", SOLVER_CASES, ids=[c.id for c in SOLVER_CASES])
def test_solver_refuses_bad_input_naming_the_argument(case):
    verdict, detail = classify(case)
    assert verdict == "clean", detail


NET_CASES = [c for name in NET_NAMES for c in net_cases(name)]


@pytest.mark.parametrize("case", NET_CASES, ids=[c.id for c in NET_CASES])
def test_net_refuses_bad_input_naming_the_argument(case):
    verdict, detail = classify(case)
    assert verdict == "clean", detail


@pytest.mark.parametrize("name", NET_NAMES)
def test_net_accepts_numpy_input(name):
    c = NetCase(name)
    net = c.net()
    as_numpy = c.inputs.numpy() if isinstance(c.inputs, Tensor) else type(c.inputs)(t.numpy() for t in c.inputs)
    with torch.no_grad():
        a, b = net(c.inputs), net(as_numpy)
    flat = lambda o: o if isinstance(o, Tensor) else torch.cat([t.reshape(-1) for t in o])  # noqa: E731
    assert torch.equal(flat(a), flat(b))


def test_ista_with_a_step_far_above_2_over_L_raises():
    with pytest.raises(FloatingPointError, match="diverged"):
        _ista_step_too_large()


if __name__ == "__main__":  # the battery's counts
    import collections

    counts = collections.Counter()
    for case in all_cases():
        verdict, detail = classify(case)
        counts[verdict] += 1
        if verdict != "clean":
            print(f"{verdict:8s} {case.id}: {detail[:160]}")
    print(dict(counts), "of", sum(counts.values()))
