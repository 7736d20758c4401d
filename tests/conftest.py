"""Shared test options: ``--solvers`` picks the backends a ``solver`` test runs on."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--solvers highs,scip,...`` (default: every installed backend)."""
    parser.addoption(
        "--solvers",
        default=None,
        help="comma-separated solver backends for tests that take `solver` "
        "(default: every installed one)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise every test that takes ``solver`` over the chosen backends."""
    if "solver" not in metafunc.fixturenames:
        return
    from planner.backends import available_backends

    chosen = metafunc.config.getoption("--solvers")
    names = [s.strip() for s in chosen.split(",")] if chosen else available_backends()
    metafunc.parametrize("solver", names)
