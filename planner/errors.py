"""Errors raised on bad input: each names the file, the record, the field and the fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input.

    Attributes
    ----------
    file : str
        The file it is in (``organisation.yaml``, ``usage.csv``, ...).
    where : str
        The record: a key path (``accounts[2].quota.cpu``) or rows (``rows 4, 9``).
    message : str
        What is wrong and what to do about it.
    """

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        where = f" {self.where}:" if self.where else ""
        return f"{self.file}:{where} {self.message}"


class InputError(ValueError):
    """The organisation folder or the usage table cannot be used as it is.

    ``problems`` holds every problem found (all of a file at once, not only the first).
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the input:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class PlannerError(RuntimeError):
    """The planner could not do what was asked for a reason other than bad input."""
