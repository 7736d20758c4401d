"""What one policy carries through the replay, and its checkpoint (one atomic file per policy)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models import Loan, Organisation, ShadowQuota
from planner.io import write_atomic

#: Fields recorded per account, resource and step of the replay.
FIELDS: tuple[str, ...] = ("usage", "quota", "shadow", "borrowed", "lent", "effective")
FORMAT_VERSION = 1


@dataclass
class PolicyState:
    """One policy's world at a cycle boundary.

    ``record[account]`` has shape ``(resources, steps of the replay, len(FIELDS))``; steps not
    yet played are NaN. ``events`` and ``cycles`` are plain rows (dicts) for the tables.
    """

    policy: str
    org: Organisation
    placement: dict[str, str]
    n_steps: int
    loans: list[Loan] = field(default_factory=list)
    shadows: list[ShadowQuota] = field(default_factory=list)
    record: dict[str, np.ndarray] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    cycles: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    cycle: int = 0

    def row(self, account: str) -> np.ndarray:
        """The record of ``account``, created (NaN) when the account is new."""
        if account not in self.record:
            self.record[account] = np.full(
                (len(self.org.resources), self.n_steps, len(FIELDS)), np.nan
            )
        return self.record[account]

    def event(self, kind: str, ts: Any, account: str, resource: str = "", **detail: Any) -> None:
        """Append one event row (kind: loan, loan_reclaimed, shadow, shadow_reverted, ...)."""
        amount = float(detail.pop("amount", 0.0))
        self.events.append(
            {
                "policy": self.policy,
                "cycle": self.cycle,
                "ts": str(ts),
                "kind": kind,
                "account": account,
                "resource": resource,
                "amount": amount,
                "detail": json.dumps(detail, sort_keys=True, default=str) if detail else "",
            }
        )


def dump_state(state: PolicyState, config: dict[str, Any]) -> bytes:
    """Serialise ``state`` (and the run's ``config``, checked on resume) to npz bytes."""
    accounts = sorted(state.record)
    meta = {
        "version": FORMAT_VERSION,
        "config": config,
        "policy": state.policy,
        "cycle": state.cycle,
        "n_steps": state.n_steps,
        "org": state.org.model_dump(mode="json"),
        "placement": state.placement,
        "loans": [x.model_dump(mode="json") for x in state.loans],
        "shadows": [x.model_dump(mode="json") for x in state.shadows],
        "events": state.events,
        "cycles": state.cycles,
        "extra": state.extra,
        "accounts": accounts,
    }
    stacked = (
        np.stack([state.record[a] for a in accounts])
        if accounts
        else np.zeros((0, len(state.org.resources), state.n_steps, len(FIELDS)))
    )
    buf = io.BytesIO()
    np.savez_compressed(buf, record=stacked, meta=np.array(json.dumps(meta)))
    return buf.getvalue()


def load_state(data: bytes) -> tuple[PolicyState, dict[str, Any]]:
    """Inverse of :func:`dump_state`: the state and the config it was written under."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        stacked = np.array(npz["record"])
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"checkpoint format {meta.get('version')} is not {FORMAT_VERSION}")
    state = PolicyState(
        policy=meta["policy"],
        org=Organisation.model_validate(meta["org"]),
        placement=dict(meta["placement"]),
        n_steps=int(meta["n_steps"]),
        loans=[Loan.model_validate(x) for x in meta["loans"]],
        shadows=[ShadowQuota.model_validate(x) for x in meta["shadows"]],
        record={a: stacked[i] for i, a in enumerate(meta["accounts"])},
        events=list(meta["events"]),
        cycles=list(meta["cycles"]),
        extra=dict(meta["extra"]),
        cycle=int(meta["cycle"]),
    )
    return state, dict(meta["config"])


def checkpoint_path(directory: Path, policy: str) -> Path:
    """Where the checkpoint of ``policy`` lives."""
    return directory / f"{policy}.ckpt.npz"


def save_checkpoint(directory: Path, state: PolicyState, config: dict[str, Any]) -> None:
    """Write ``state`` atomically (a crash leaves the previous checkpoint whole)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(checkpoint_path(directory, state.policy), dump_state(state, config))


def read_checkpoint(directory: Path, policy: str, config: dict[str, Any]) -> PolicyState | None:
    """The checkpointed state of ``policy``, or None when there is none.

    Raises
    ------
    ValueError
        When the checkpoint was written by a run with another configuration.
    """
    path = checkpoint_path(directory, policy)
    if not path.exists():
        return None
    state, saved = load_state(path.read_bytes())
    if saved != config:
        diff = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
        raise ValueError(
            f"the checkpoint {path} was written with other settings ({', '.join(diff)}); "
            "use another --checkpoint folder or delete it"
        )
    return state
