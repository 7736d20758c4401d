"""``quota-planner schema``: the JSON Schema of the inputs and of the plan."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models import Organisation, Plan
from planner.cli.common import console
from planner.io import write_atomic


def schemas() -> dict[str, object]:
    """JSON Schemas by name: the organisation file and the plan."""
    return {
        "organisation": Organisation.model_json_schema(),
        "plan": Plan.model_json_schema(mode="serialization"),
    }


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``schema`` command."""
    p = sub.add_parser(
        "schema",
        help="write the JSON Schema of organisation.yaml and of the plan",
        description="Print (or write to a folder) the JSON Schema of the inputs and the output.",
        epilog="examples:\n  quota-planner schema --which plan\n  quota-planner schema --out schemas/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--which", choices=("organisation", "plan", "all"), default="all")
    p.add_argument("--out", type=Path, default=None, help="folder to write NAME.schema.json into")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``schema``."""
    all_schemas = schemas()
    chosen = all_schemas if args.which == "all" else {args.which: all_schemas[args.which]}
    if args.out is None:
        print(json.dumps(chosen if len(chosen) > 1 else next(iter(chosen.values())), indent=2))
        return 0
    for name, schema in chosen.items():
        path = args.out / f"{name}.schema.json"
        write_atomic(path, json.dumps(schema, indent=2))
        console.print(f"wrote {path}")
    return 0
