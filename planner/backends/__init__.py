"""Solver backends behind one registry.

``get_backend(name)`` returns a backend; an unknown name raises a ``ValueError`` listing the
valid ones. ``available_backends()`` lists those whose library is installed (checked without
importing it). Every backend takes the same :class:`~planner.formulation.core.LinearModel` and
:class:`SolveOptions` and returns a :class:`SolveResult` with a :class:`models.Status`.
"""

from __future__ import annotations

from planner.backends.base import Backend, SolveOptions, SolveResult, SolverUnavailableError
from planner.backends.cbc import CbcBackend, ClpBackend
from planner.backends.highspy_direct import HighspyBackend
from planner.backends.ortools_mb import CpSatBackend, GlopBackend, HighsBackend, ScipBackend
from planner.backends.pulp_backend import PulpCbcBackend, PulpHighsBackend

DEFAULT = "highs"

REGISTRY: dict[str, type[Backend]] = {
    cls.name: cls
    for cls in (
        HighsBackend,
        ScipBackend,
        CpSatBackend,
        GlopBackend,
        CbcBackend,
        ClpBackend,
        HighspyBackend,
        PulpCbcBackend,
        PulpHighsBackend,
    )
}

__all__ = [
    "DEFAULT",
    "REGISTRY",
    "Backend",
    "SolveOptions",
    "SolveResult",
    "SolverUnavailableError",
    "available_backends",
    "get_backend",
]


def get_backend(name: str | None = None) -> Backend:
    """The backend called ``name`` (default ``highs``).

    Raises
    ------
    ValueError
        When no backend has that name; the message lists the valid names.
    SolverUnavailableError
        When the backend's library is not installed.
    """
    key = DEFAULT if name is None else name.strip().lower()
    if key not in REGISTRY:
        raise ValueError(
            f"unknown solver {name!r}; valid names: {', '.join(REGISTRY)} "
            f"(installed: {', '.join(available_backends())})"
        )
    cls = REGISTRY[key]
    if not cls.is_available():
        raise SolverUnavailableError(
            f"solver {key!r} needs the Python package {cls.module!r}, which is not installed"
        )
    return cls()


def available_backends(*, mip_only: bool = False) -> list[str]:
    """Names of the backends whose library is installed (``mip_only``: those that solve MIPs)."""
    return [
        n
        for n, cls in REGISTRY.items()
        if cls.is_available() and (not mip_only or "mip" in cls.features)
    ]
