"""Registries that families fill in themselves; ``core`` imports no family.

A family takes part by registering, in a module named by an entry point of
the group ``unrolled.families`` (see ``pyproject.toml``; a third-party package
can add its own family the same way):

* :data:`FAMILIES`: a :class:`Family` (name, one-line description, solvers);
* :data:`MODELS`: loadable model classes (:func:`unrolled.core.io.register_model`);
* :data:`NETS`: :class:`NetSpec` entries, which drive ``unrolled train``,
  ``unrolled evaluate`` and the contract suite ``tests/contracts/``;
* :data:`EXPERIMENTS`, :data:`BENCHMARKS`, :data:`DEMO_PARTS`: what
  ``unrolled reproduce``, ``unrolled benchmark`` and ``unrolled demo`` run.

:func:`load_families` imports every registered family module once; each
registry's read methods call it, so looking something up by name always sees
every family.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")

ENTRY_POINT_GROUP = "unrolled.families"
_loaded = False
_loading = False


def family_modules() -> list[str]:
    """Module names declared under the ``unrolled.families`` entry-point group, sorted by name."""
    eps = entry_points(group=ENTRY_POINT_GROUP)
    return [ep.value for ep in sorted(eps, key=lambda e: e.name)]


def load_families() -> None:
    """Import every family's registration module (once)."""
    global _loaded, _loading
    if _loaded or _loading:
        return
    _loading = True
    try:
        for module in family_modules():
            importlib.import_module(module)
        _loaded = True
    finally:
        _loading = False


class Registry(Generic[T]):
    """A name -> object mapping that families fill in at import time.

    Reading it (``reg[name]``, ``in``, iteration, ``len``) first loads every
    family, so the lookup sees all of them.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T) -> T:
        """Add ``obj`` under ``name``; registering a different object twice is an error."""
        if name in self._items and self._items[name] is not obj and self._items[name] != obj:
            raise ValueError(f"a different {self.kind} is already registered as {name!r}")
        self._items[name] = obj
        return obj

    def _all(self) -> dict[str, T]:
        load_families()
        return self._items

    def __getitem__(self, name: str) -> T:
        items = self._all()
        if name not in items:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {sorted(items)}")
        return items[name]

    def get(self, name: str, default=None):
        return self._all().get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._all()))

    def __len__(self) -> int:
        return len(self._all())

    def keys(self):
        return dict(self._all()).keys()

    def values(self):
        return dict(self._all()).values()

    def items(self):
        return dict(self._all()).items()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._items)})"


@dataclass(frozen=True)
class Family:
    """A family of the library: its subpackage, a one-line description and its classic solvers."""

    name: str
    module: str
    description: str
    solvers: tuple[str, ...] = ()
    details: tuple[str, ...] = ()  # extra lines for `unrolled list` (e.g. the graph ensembles)


@dataclass(frozen=True)
class Experiment:
    """A reproduction: ``run(out_dir, quick=..., device=..., seed=..., progress=..., **settings) -> dict``.

    ``config`` names the full run's config dataclass (a class or an instance) as ``"module:attribute"``; its
    fields are the ``settings`` keys (``unrolled reproduce NAME --set KEY=VALUE``), and ``nested`` names fields
    of it whose own fields are accepted as keys too. :meth:`settings` lists them, loaded lazily.
    """

    name: str
    paper: str
    description: str
    run: Callable[..., dict]
    family: str = ""
    config: str = ""
    nested: tuple[str, ...] = ()

    def settings(self) -> dict[str, tuple[str, Any]]:
        """``{key: (type, default of the full run)}`` of the accepted settings; ``{}`` when none is declared."""
        if not self.config:
            return {}
        module, _, attr = self.config.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return _dataclass_settings(obj, self.nested)


def _dataclass_settings(obj, nested: tuple[str, ...] = ()) -> dict[str, tuple[str, Any]]:
    """Fields of a dataclass (class or instance) as ``{name: (type, default)}``; ``nested`` fields expanded."""
    import dataclasses

    out: dict[str, tuple[str, Any]] = {}
    for f in dataclasses.fields(obj):
        if isinstance(obj, type):
            default = (f.default if f.default is not dataclasses.MISSING else
                       f.default_factory() if f.default_factory is not dataclasses.MISSING else "(required)")
        else:
            default = getattr(obj, f.name)
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if f.name in nested and dataclasses.is_dataclass(default):
            out.update({k: v for k, v in _dataclass_settings(default).items() if k not in out})
            continue
        out[f.name] = (kind, default)
    return out


@dataclass(frozen=True)
class Benchmark:
    """A side-by-side benchmark: ``run(out_dir=..., quick=..., seed=..., device=...) -> dict``.

    A result's ``"ratios"`` (rows of :func:`~unrolled.experiments.bench_cli.ratio_row`: case, ours, reference,
    times, ``reference / ours``, accuracy match) go into the one table of ``unrolled benchmark all``, which runs
    every benchmark with ``in_all``.
    """

    name: str
    description: str
    run: Callable[..., dict]
    family: str = ""
    in_all: bool = True


@dataclass(frozen=True)
class DemoPart:
    """One part of ``unrolled demo``: ``run(out_dir, seed=..., device=..., progress=...) -> dict``.

    Parts run in increasing ``order``.
    """

    name: str
    family: str
    order: int
    run: Callable[..., dict]


@dataclass(frozen=True)
class NetSpec:
    """What the CLI and the contract suite need to know about one unrolled net.

    Attributes
    ----------
    name : str
        CLI name (``unrolled train --model NAME``).
    family : str
        Name of its :class:`Family`.
    cls : type
        The net class (registered with :func:`~unrolled.core.io.register_model`).
    problem : callable
        ``problem(seed=0, small=False, **problem_options) -> problem`` with
        ``problem.sample(n, generator) -> (inputs, targets)``; ``small=True``
        gives the tiny sizes the contract suite uses. ``problem_config(problem)``
        returns the options that rebuild it (stored with a trained model).
    from_algorithm : callable
        ``from_algorithm(problem, n_layers, tied, options) -> net``: the
        untrained net holding the algorithm's parameter values.
    solver : callable
        ``solver(problem, inputs, max_iter, tol, callback, options) ->
        SolverResult``: the algorithm the untrained net equals, run with the
        parameters ``from_algorithm`` maps; ``callback(k, estimate)`` sees each
        iterate in the form of the net's layer outputs (after ``compare``).
    loss : callable
        ``loss(prediction, target) -> scalar`` for training.
    metric : callable
        ``metric(prediction, target) -> float`` reported per layer by
        ``unrolled evaluate``.
    metric_name : str
        Its label (e.g. ``'NMSE (dB)'``).
    input_name : str
        Name of the net's input in error messages (``'y'``, ``'Y'``, ``'X'``).
    problem_config : callable
        ``problem_config(problem) -> dict`` (JSON).
    options : dict
        Defaults of the algorithm's settings (e.g. ``{'lam': 0.1}``) passed to
        ``from_algorithm``, ``solver`` and ``baselines``; ``unrolled train
        --option KEY=VALUE`` overrides them.
    baselines : dict
        Classic solvers ``unrolled evaluate`` runs beside the net, per
        iteration, by label; each has the signature of ``solver``
        (default: ``{'solver': solver}``).
    default_layers : int
        Depth used by ``unrolled train`` when none is given.
    equivalence_atol : float
        Tolerance of "untrained net == K solver iterations" in float64.
    compare : callable, optional
        ``compare(net_output) -> Tensor``: the part of a net output that the
        solver's estimate is compared with (identity when ``None``).
    notes : str
        What does not fit the generic contract and how it is handled.
    """

    name: str
    family: str
    cls: type
    problem: Callable[..., Any]
    from_algorithm: Callable[..., Any]
    solver: Callable[..., Any]
    loss: Callable[..., Any]
    metric: Callable[..., float]
    metric_name: str
    input_name: str
    problem_config: Callable[[Any], dict]
    options: dict = field(default_factory=dict, hash=False, compare=False)
    baselines: dict = field(default_factory=dict, hash=False, compare=False)
    default_layers: int = 10
    equivalence_atol: float = 1e-10
    compare: Callable[[Any], Any] | None = None
    notes: str = ""


FAMILIES: Registry[Family] = Registry("family")
MODELS: Registry[type] = Registry("model class")
NETS: Registry[NetSpec] = Registry("net")
EXPERIMENTS: Registry[Experiment] = Registry("experiment")
BENCHMARKS: Registry[Benchmark] = Registry("benchmark")
DEMO_PARTS: Registry[DemoPart] = Registry("demo part")


def register_family(family: Family) -> Family:
    """Register a :class:`Family`."""
    return FAMILIES.register(family.name, family)


def register_net(spec: NetSpec) -> NetSpec:
    """Register a :class:`NetSpec` (and its class as a loadable model)."""
    MODELS.register(spec.cls.__name__, spec.cls)
    return NETS.register(spec.name, spec)


def _register_of_family(registry: Registry, entry, family: str | None):
    if family is not None and entry.family != family:
        entry = replace(entry, family=family)
    return registry.register(entry.name, entry)


def register_experiment(experiment: Experiment, family: str | None = None) -> Experiment:
    """Register an :class:`Experiment` (``family`` fills in its family when given)."""
    return _register_of_family(EXPERIMENTS, experiment, family)


def register_benchmark(benchmark: Benchmark, family: str | None = None) -> Benchmark:
    """Register a :class:`Benchmark` (``family`` fills in its family when given)."""
    return _register_of_family(BENCHMARKS, benchmark, family)


def register_demo_part(part: DemoPart) -> DemoPart:
    """Register a :class:`DemoPart`."""
    return DEMO_PARTS.register(part.name, part)


def demo_parts() -> list[DemoPart]:
    """The registered demo parts in running order."""
    return sorted(DEMO_PARTS.values(), key=lambda p: (p.order, p.name))


def nets_of(family: str) -> dict[str, NetSpec]:
    """The registered nets of one family, by CLI name."""
    return {name: spec for name, spec in NETS.items() if spec.family == family}


def net_for_class(cls_name: str) -> NetSpec | None:
    """The first registered :class:`NetSpec` whose class is named ``cls_name``."""
    for spec in NETS.values():
        if spec.cls.__name__ == cls_name:
            return spec
    return None
