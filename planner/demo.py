"""The embedded demo organisation: real Bitbrains VMs grouped into sub-accounts.

See ``planner/demo_data/README.md`` for how it was built and the citation of each trace.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pandas as pd

from models import Organisation
from planner.io import load


def demo_path() -> Path:
    """Folder of the embedded demo organisation (inside the installed package)."""
    return Path(str(resources.files("planner") / "demo_data"))


def load_demo() -> tuple[Organisation, pd.DataFrame]:
    """The demo organisation and its usage table, validated."""
    return load(demo_path())


def write_demo(target: Path) -> Path:
    """Copy the demo folder to ``target`` so a user can edit and re-plan it."""
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty; choose a new folder")
    shutil.copytree(demo_path(), target, dirs_exist_ok=True)
    return target
