"""loan_records: degenerate pool solutions and loans in force that start later."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from test_mip_cases import START, case

from models import Loan
from planner.loans import loan_records

PERIODS = [START + timedelta(hours=h) for h in range(4)]


def _org(loans: list[dict[str, object]] | None = None):  # type: ignore[no-untyped-def]
    org, _ = case(
        [{"id": a, "quota": {"cpu": 5}} for a in ("A", "B", "C")],
        {"A": [1, 1, 1, 1], "B": [1, 1, 1, 1], "C": [1, 1, 1, 1]},
        capacity=20,
        state={"loans": loans or []},
    )
    return org


def _records(org, lend: np.ndarray, borrow: np.ndarray) -> list[Loan]:  # type: ignore[no-untyped-def]
    kept = np.full(lend.shape, 5.0) - lend
    need = np.zeros(lend.shape)
    return loan_records(org, ["A", "B", "C"], ["cpu"], PERIODS, lend, borrow, kept, need)


def test_an_account_that_lends_and_borrows_at_once_only_moves_its_net() -> None:
    lend = np.zeros((3, 1, 4))
    borrow = np.zeros((3, 1, 4))
    lend[0, 0, :] = 3.0  # A lends 3 ...
    borrow[0, 0, :] = 1.0  # ... and borrows 1 in the same periods: net 2 out
    borrow[1, 0, :] = 2.0  # B borrows 2
    loans = _records(_org(), lend, borrow)
    assert all(x.lender != x.borrower for x in loans)
    assert [(x.lender, x.borrower, x.amount) for x in loans] == [("A", "B", 2.0)]
    assert loans[0].start == PERIODS[0]
    assert loans[0].until == PERIODS[-1] + timedelta(hours=1)


def test_a_planned_loan_that_has_not_started_is_not_continued_backwards() -> None:
    future = {
        "id": "later",
        "lender": "A",
        "borrower": "B",
        "resource": "cpu",
        "amount": 2,
        "start": START + timedelta(hours=10),
        "until": START + timedelta(hours=12),
    }
    lend = np.zeros((3, 1, 4))
    borrow = np.zeros((3, 1, 4))
    lend[0, 0, :2] = 2.0
    borrow[1, 0, :2] = 2.0
    loans = _records(_org([future]), lend, borrow)
    assert len(loans) == 1
    assert loans[0].start == PERIODS[0]
    assert loans[0].until == PERIODS[2]
    assert loans[0].id != "later"


def test_a_loan_in_force_continues_with_its_start_and_id() -> None:
    running = {
        "id": "L1",
        "lender": "A",
        "borrower": "B",
        "resource": "cpu",
        "amount": 2,
        "start": START - timedelta(hours=2),
        "until": START + timedelta(hours=1),
    }
    lend = np.zeros((3, 1, 4))
    borrow = np.zeros((3, 1, 4))
    lend[0, 0, :] = 2.0
    borrow[1, 0, :] = 2.0
    loans = _records(_org([running]), lend, borrow)
    assert [(x.id, x.start) for x in loans] == [("L1", START - timedelta(hours=2))]


def test_a_loan_committed_until_expiry_is_restated_and_only_the_rest_is_matched() -> None:
    committed = {
        "id": "C1",
        "lender": "A",
        "borrower": "B",
        "resource": "cpu",
        "amount": 1,
        "start": START + timedelta(hours=1),  # starts inside the horizon, not yet in force
        "until": START + timedelta(hours=3),
        "reclaim": "expiry",
    }
    lend = np.zeros((3, 1, 4))
    borrow = np.zeros((3, 1, 4))
    lend[0, 0, :] = [0.0, 1.0, 3.0, 0.0]  # the committed 1 in hours 1-2, plus 2 more in hour 2
    borrow[1, 0, :] = [0.0, 1.0, 1.0, 0.0]
    borrow[2, 0, :] = [0.0, 0.0, 2.0, 0.0]
    loans = _records(_org([committed]), lend, borrow)
    got = sorted((x.id, x.lender, x.borrower, x.amount, x.start, x.until) for x in loans)
    assert got[0] == ("C1", "A", "B", 1.0, START + timedelta(hours=1), START + timedelta(hours=3))
    rest = [x for x in loans if x.id != "C1"]
    assert [(x.lender, x.borrower, x.amount, x.start) for x in rest] == [
        ("A", "C", 2.0, START + timedelta(hours=2))
    ]


def test_new_loans_go_back_when_the_lender_needs_them_unless_the_rules_guarantee_them() -> None:
    """By default every new loan is reclaimable (Kueue's reclaimWithinCohort: a lender whose
    forecast was wrong is never throttled by its own loan); with ``guaranteed_loans`` a loan
    whose lender's need stays below what it kept is returned only at expiry."""
    lend = np.zeros((3, 1, 4))
    borrow = np.zeros((3, 1, 4))
    lend[0, 0, :] = 2.0  # A lends 2 to B, and A's need (0) stays below what it kept (3)
    borrow[1, 0, :] = 2.0
    lend[2, 0, :2] = 1.0  # C lends 1 to B, and C's own need rises above what it kept
    borrow[1, 0, :2] += 1.0
    org = _org()
    kept = np.full(lend.shape, 5.0) - lend
    need = np.zeros(lend.shape)
    need[2, 0, 1] = 4.5
    args = (["A", "B", "C"], ["cpu"], PERIODS, lend, borrow, kept, need)
    loans = loan_records(org, *args)
    assert {(x.lender, x.reclaim) for x in loans} == {("A", "lender_need"), ("C", "lender_need")}
    rules = org.rules.model_copy(update={"guaranteed_loans": True})
    loans = loan_records(org.model_copy(update={"rules": rules}), *args)
    assert {(x.lender, x.reclaim) for x in loans} == {("A", "expiry"), ("C", "lender_need")}
