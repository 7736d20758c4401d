"""Replay real usage through time under several quota policies and measure what users feel.

>>> from planner.simulate import simulate, POLICIES
>>> sorted(POLICIES)
['greedy', 'kueue', 'kueue-shadow', 'mip', 'mip-plan', 'oracle', 'static']

See :func:`simulate` for the loop, :mod:`planner.simulate.play` for how usage meets the effective
quotas, and :mod:`planner.simulate.metrics` for what is measured.
"""

from __future__ import annotations

from planner.simulate.engine import Replay, default_start, simulate
from planner.simulate.metrics import account_metrics, events_frame, policy_metrics, series_frame
from planner.simulate.policies import POLICIES, Policy, get_policy
from planner.simulate.state import FIELDS, PolicyState
from planner.simulate.trace import Trace, build_trace

__all__ = [
    "FIELDS",
    "POLICIES",
    "Policy",
    "PolicyState",
    "Replay",
    "Trace",
    "account_metrics",
    "build_trace",
    "default_start",
    "events_frame",
    "get_policy",
    "policy_metrics",
    "series_frame",
    "simulate",
]
