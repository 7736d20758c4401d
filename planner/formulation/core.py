"""A solver-neutral linear model assembled from numpy arrays, block by block.

A :class:`ModelBuilder` collects *variable blocks* (a named n-dimensional array of variables
with labels per axis, bounds, objective coefficients and integrality) and *constraint families*
(a named n-dimensional array of rows with labels, lower and upper bounds). Coefficients are
added to a family as vectors of (row, column, value) triplets that point into blocks by name, so
a later module can add a block and put its terms into an existing family without touching the
code that defined either. :meth:`ModelBuilder.build` assembles one sparse CSR matrix and returns
a :class:`LinearModel`, which every backend takes as it is.

Names are stable and structured: variable ``quota[acct-1,cpu]``, row
``capacity[cpu,2026-01-01T10:00]``. They are generated lazily (only exports and diagnoses need
them), so building stays a handful of vectorised numpy operations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
INF = float("inf")


@dataclass
class Block:
    """A named array of variables.

    Attributes
    ----------
    name
        Block name (``quota``, ``shadow``, ...), also the prefix of every variable's name.
    axes
        Axis names, e.g. ``("account", "resource", "period")``.
    labels
        One sequence of labels per axis.
    lower, upper, cost
        Flattened (C order) bounds and objective coefficients.
    integer
        Whether every variable of the block is integral.
    doc
        What the block means, in words.
    offset
        Index of the block's first column in the assembled model (set by ``build``).
    """

    name: str
    axes: tuple[str, ...]
    labels: tuple[Sequence[Any], ...]
    lower: FloatArray
    upper: FloatArray
    cost: FloatArray
    integer: bool
    doc: str
    offset: int = -1

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of labels per axis."""
        return tuple(len(x) for x in self.labels)

    @property
    def size(self) -> int:
        """Number of variables."""
        return int(np.prod(self.shape, dtype=np.int64))

    def index(self) -> IntArray:
        """Local (0-based, within the block) index of each variable, shaped like the block."""
        return np.arange(self.size, dtype=np.int64).reshape(self.shape)

    def name_of(self, local: int) -> str:
        """Structured name of the variable at local index ``local``."""
        pos = np.unravel_index(local, self.shape)
        return f"{self.name}[{','.join(_label(self.labels[k][int(p)]) for k, p in enumerate(pos))}]"


@dataclass
class Family:
    """A named array of rows ``lower <= sum(coef * var) <= upper``.

    ``relaxable`` marks rules an infeasibility diagnosis may relax (capacity, floors,
    thresholds); definitional rows (churn, pool balance, linking) are not relaxable.
    """

    name: str
    axes: tuple[str, ...]
    labels: tuple[Sequence[Any], ...]
    lower: FloatArray
    upper: FloatArray
    doc: str
    relaxable: bool = False
    terms: list[tuple[str, IntArray, IntArray, FloatArray]] = field(default_factory=list)
    offset: int = -1

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of labels per axis."""
        return tuple(len(x) for x in self.labels)

    @property
    def size(self) -> int:
        """Number of rows."""
        return int(np.prod(self.shape, dtype=np.int64))

    def index(self) -> IntArray:
        """Local index of each row, shaped like the family."""
        return np.arange(self.size, dtype=np.int64).reshape(self.shape)

    def name_of(self, local: int) -> str:
        """Structured name of the row at local index ``local``."""
        pos = np.unravel_index(local, self.shape)
        return f"{self.name}[{','.join(_label(self.labels[k][int(p)]) for k, p in enumerate(pos))}]"


def _label(x: Any) -> str:
    if hasattr(x, "isoformat"):
        return str(x.isoformat(timespec="minutes"))
    return str(x)


@dataclass
class LinearModel:
    """``min cost @ x + offset`` s.t. ``row_lower <= A @ x <= row_upper``, bounds, integrality.

    Built once by :meth:`ModelBuilder.build` and handed unchanged to every backend.
    """

    name: str
    cost: FloatArray
    lower: FloatArray
    upper: FloatArray
    integer: npt.NDArray[np.bool_]
    matrix: sp.csr_matrix
    row_lower: FloatArray
    row_upper: FloatArray
    blocks: dict[str, Block]
    families: dict[str, Family]
    offset: float = 0.0
    build_seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_vars(self) -> int:
        """Number of columns."""
        return int(self.cost.shape[0])

    @property
    def num_rows(self) -> int:
        """Number of rows."""
        return int(self.row_lower.shape[0])

    @property
    def is_mip(self) -> bool:
        """Whether any variable is integral."""
        return bool(self.integer.any())

    def values(self, block: str, x: FloatArray) -> FloatArray:
        """The values of ``block`` in the solution vector ``x``, shaped like the block."""
        b = self.blocks[block]
        return x[b.offset : b.offset + b.size].reshape(b.shape)

    def row_values(self, family: str, y: FloatArray) -> FloatArray:
        """Per-row values (activities or duals) of ``family`` from a full row vector ``y``."""
        f = self.families[family]
        return y[f.offset : f.offset + f.size].reshape(f.shape)

    def objective(self, x: FloatArray) -> float:
        """Objective value of ``x``."""
        return float(self.cost @ x + self.offset)

    def var_name(self, j: int) -> str:
        """Structured name of column ``j``."""
        for b in self.blocks.values():
            if b.offset <= j < b.offset + b.size:
                return b.name_of(j - b.offset)
        raise IndexError(f"column {j} is outside the model's {self.num_vars} columns")

    def row_name(self, i: int) -> str:
        """Structured name of row ``i``."""
        for f in self.families.values():
            if f.offset <= i < f.offset + f.size:
                return f.name_of(i - f.offset)
        raise IndexError(f"row {i} is outside the model's {self.num_rows} rows")

    def var_names(self) -> list[str]:
        """Every column's name, in order."""
        return [b.name_of(k) for b in self.blocks.values() for k in range(b.size)]

    def row_names(self) -> list[str]:
        """Every row's name, in order."""
        return [f.name_of(k) for f in self.families.values() for k in range(f.size)]

    def relaxed(self) -> LinearModel:
        """The LP relaxation (same arrays, no integrality)."""
        return _replace(self, integer=np.zeros_like(self.integer))

    def with_bounds(self, lower: FloatArray, upper: FloatArray) -> LinearModel:
        """The same model with other column bounds (used to fix rounded binaries)."""
        return _replace(self, lower=lower, upper=upper)

    def priced_out(self, families: Sequence[str], prices: FloatArray) -> tuple[LinearModel, str]:
        """The Lagrangian relaxation of the rows of ``families`` at the row prices ``prices``
        (one per row of the model, the sign convention of the solvers' row duals: reduced
        cost ``= cost - A^T y``).

        ``min cost @ x`` over the other rows becomes ``min (cost - A_F^T y) @ x + b_F @ y``,
        ``b_F`` a row's lower bound where its price is positive, its upper bound where negative.
        A price of the wrong sign for its row's bounds (or at an infinite bound) is set to 0,
        so the relaxation's optimum is a lower bound of this model's for any ``prices``.
        Returns the relaxed model and a note naming the prices that were zeroed (if any).
        """
        spans = [self.families[f] for f in families]
        rows = np.concatenate(
            [np.arange(f.offset, f.offset + f.size) for f in spans] or [np.zeros(0, np.int64)]
        )
        y = np.asarray(prices, dtype=np.float64)[rows].copy()
        lo, hi = self.row_lower[rows], self.row_upper[rows]
        wrong = ((y > 0) & ~np.isfinite(lo)) | ((y < 0) & ~np.isfinite(hi))
        y[wrong] = 0.0
        rhs = np.where(y > 0, lo, np.where(y < 0, hi, 0.0))
        keep = np.ones(self.num_rows, dtype=bool)
        keep[rows] = False
        kept: dict[str, Family] = {}
        start = 0
        for name, fam in self.families.items():
            if name in families:
                continue
            kept[name] = dataclasses.replace(fam, offset=start)
            start += fam.size
        model = _replace(
            self,
            cost=self.cost - self.matrix[rows].T @ y,
            offset=self.offset + float(rhs @ y),
            matrix=self.matrix[keep],
            row_lower=self.row_lower[keep],
            row_upper=self.row_upper[keep],
            families=kept,
        )
        note = f"{int(wrong.sum())} price(s) of the wrong sign set to 0" if wrong.any() else ""
        return model, note

    def violations(self, x: FloatArray, tol: float = 1e-6) -> list[str]:
        """Rows and bounds ``x`` breaks, by name (a check of a backend's answer)."""
        out: list[str] = []
        act = self.matrix @ x
        scale = 1.0 + np.abs(act)
        bad = np.flatnonzero(
            (act < self.row_lower - tol * scale) | (act > self.row_upper + tol * scale)
        )
        for i in bad[:20]:
            out.append(
                f"row {self.row_name(int(i))}: {act[i]:.6g} not in "
                f"[{self.row_lower[i]:.6g}, {self.row_upper[i]:.6g}]"
            )
        xs = 1.0 + np.abs(x)
        badc = np.flatnonzero((x < self.lower - tol * xs) | (x > self.upper + tol * xs))
        for j in badc[:20]:
            out.append(
                f"variable {self.var_name(int(j))} = {x[j]:.6g} outside "
                f"[{self.lower[j]:.6g}, {self.upper[j]:.6g}]"
            )
        return out


def _replace(model: LinearModel, **changes: Any) -> LinearModel:
    data = dict(model.__dict__)
    data.update(changes)
    return LinearModel(**data)


class ModelBuilder:
    """Collects variable blocks and constraint families, then assembles one sparse model.

    Extension hook: ``build_model(data, extensions=[f, g])`` calls each ``f(builder, data)``
    after the base families are defined. An extension adds its own blocks with
    :meth:`add_block`, its own families with :meth:`add_family`, puts terms into any family
    (its own or an existing one, e.g. new accounts' quotas into ``capacity``) with
    :meth:`add_terms`, and may shift a family's bounds with :meth:`shift_bounds`. Nothing is
    assembled before :meth:`build`, so the order of extensions does not matter for the result.
    """

    def __init__(self, name: str = "quota-planner") -> None:
        self.name = name
        self.blocks: dict[str, Block] = {}
        self.families: dict[str, Family] = {}
        self.meta: dict[str, Any] = {}

    def add_block(
        self,
        name: str,
        axes: tuple[str, ...],
        labels: tuple[Sequence[Any], ...],
        *,
        lower: float | npt.ArrayLike = 0.0,
        upper: float | npt.ArrayLike = INF,
        cost: float | npt.ArrayLike = 0.0,
        integer: bool = False,
        doc: str = "",
    ) -> Block:
        """Add a block of variables; scalars broadcast to the block's shape.

        Raises
        ------
        ValueError
            When the name is taken or an array does not broadcast to the block's shape.
        """
        if name in self.blocks:
            raise ValueError(f"variable block {name!r} already exists; pick another name")
        if len(axes) != len(labels):
            raise ValueError(f"block {name!r}: {len(axes)} axes but {len(labels)} label lists")
        shape = tuple(len(x) for x in labels)
        block = Block(
            name=name,
            axes=axes,
            labels=labels,
            lower=_full(lower, shape, f"{name}.lower"),
            upper=_full(upper, shape, f"{name}.upper"),
            cost=_full(cost, shape, f"{name}.cost"),
            integer=integer,
            doc=doc,
        )
        self.blocks[name] = block
        return block

    def add_family(
        self,
        name: str,
        axes: tuple[str, ...],
        labels: tuple[Sequence[Any], ...],
        *,
        lower: float | npt.ArrayLike = -INF,
        upper: float | npt.ArrayLike = INF,
        doc: str = "",
        relaxable: bool = False,
    ) -> Family:
        """Add a family of rows ``lower <= ... <= upper`` (terms come with :meth:`add_terms`)."""
        if name in self.families:
            raise ValueError(f"constraint family {name!r} already exists; pick another name")
        shape = tuple(len(x) for x in labels)
        fam = Family(
            name=name,
            axes=axes,
            labels=labels,
            lower=_full(lower, shape, f"{name}.lower"),
            upper=_full(upper, shape, f"{name}.upper"),
            doc=doc,
            relaxable=relaxable,
        )
        self.families[name] = fam
        return fam

    def add_terms(
        self,
        family: str,
        block: str,
        rows: npt.ArrayLike,
        cols: npt.ArrayLike,
        coef: float | npt.ArrayLike,
    ) -> None:
        """Add ``coef * block[cols]`` to ``family[rows]`` (local indices, broadcast together).

        Raises
        ------
        KeyError
            When the family or block does not exist (the message lists those that do).
        ValueError
            When an index falls outside the family or block.
        """
        if family not in self.families:
            raise KeyError(f"no constraint family {family!r}; known: {', '.join(self.families)}")
        if block not in self.blocks:
            raise KeyError(f"no variable block {block!r}; known: {', '.join(self.blocks)}")
        r, c, v = np.broadcast_arrays(
            np.asarray(rows, dtype=np.int64),
            np.asarray(cols, dtype=np.int64),
            np.asarray(coef, dtype=np.float64),
        )
        r, c, v = r.ravel(), c.ravel(), v.ravel()
        fam, blk = self.families[family], self.blocks[block]
        if r.size and (r.min() < 0 or r.max() >= fam.size):
            raise ValueError(f"row index outside family {family!r} of size {fam.size}")
        if c.size and (c.min() < 0 or c.max() >= blk.size):
            raise ValueError(f"column index outside block {block!r} of size {blk.size}")
        keep = v != 0.0
        fam.terms.append((block, r[keep], c[keep], v[keep]))

    def shift_bounds(self, family: str, delta: npt.ArrayLike) -> None:
        """Add ``delta`` (broadcast to the family's shape) to both bounds of ``family``."""
        fam = self.families[family]
        d = _full(delta, fam.shape, f"{family}.delta")
        fam.lower = fam.lower + d
        fam.upper = fam.upper + d

    def build(self) -> LinearModel:
        """Assemble the blocks and families into one :class:`LinearModel`."""
        col = 0
        for b in self.blocks.values():
            b.offset = col
            col += b.size
        row = 0
        rows, cols, vals = [], [], []
        for f in self.families.values():
            f.offset = row
            for block, r, c, v in f.terms:
                rows.append(r + row)
                cols.append(c + self.blocks[block].offset)
                vals.append(v)
            row += f.size
        blocks = list(self.blocks.values())
        fams = list(self.families.values())
        empty_f = np.zeros(0)
        matrix = sp.csr_matrix(
            (
                np.concatenate(vals) if vals else empty_f,
                (
                    np.concatenate(rows) if rows else empty_f.astype(np.int64),
                    np.concatenate(cols) if cols else empty_f.astype(np.int64),
                ),
            ),
            shape=(row, col),
        )
        matrix.sum_duplicates()
        return LinearModel(
            name=self.name,
            cost=_cat([b.cost for b in blocks]),
            lower=_cat([b.lower for b in blocks]),
            upper=_cat([b.upper for b in blocks]),
            integer=np.concatenate(
                [np.full(b.size, b.integer, dtype=bool) for b in blocks] or [np.zeros(0, bool)]
            ),
            matrix=matrix,
            row_lower=_cat([f.lower for f in fams]),
            row_upper=_cat([f.upper for f in fams]),
            blocks=dict(self.blocks),
            families=dict(self.families),
            meta=dict(self.meta),
        )


def _cat(arrays: list[FloatArray]) -> FloatArray:
    return np.concatenate(arrays) if arrays else np.zeros(0)


def _full(value: float | npt.ArrayLike, shape: tuple[int, ...], what: str) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    try:
        out = np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(f"{what} has shape {arr.shape}, which does not fit {shape}") from None
    return np.ascontiguousarray(out, dtype=np.float64).ravel()
