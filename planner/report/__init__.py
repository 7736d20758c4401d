"""Reports: a replay (``quota-planner simulate --out``) or one plan (``plan --out``) as Markdown,
HTML and PNG plots.

:func:`render` takes either and writes ``report.md``, ``report.html`` and the PNGs.
"""

from __future__ import annotations

from pathlib import Path

from models import Organisation, Plan
from planner.report.doc import Document
from planner.report.plan import plan_series, render_plan
from planner.report.run import choose_accounts, render_run
from planner.simulate.output import is_run_dir, read_run

__all__ = ["Document", "choose_accounts", "plan_series", "render", "render_plan", "render_run"]


def render(source: Path, out: Path, *, org: Organisation | None = None) -> list[Path]:
    """Render a replay folder or a ``plan.json`` into ``out``.

    Raises
    ------
    FileNotFoundError
        When ``source`` does not exist.
    ValueError
        When ``source`` is neither a replay folder nor a plan JSON file.
    """
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    if is_run_dir(source):
        return render_run(read_run(source), out)
    if source.is_file():
        try:
            plan = Plan.model_validate_json(source.read_text())
        except ValueError as exc:
            raise ValueError(
                f"{source} is not a plan written by 'quota-planner plan --out' ({str(exc).splitlines()[0]})"
            ) from None
        return render_plan(plan, out, org=org)
    raise ValueError(f"{source} is neither a replay folder (with run.json) nor a plan JSON file")
