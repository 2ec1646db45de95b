"""The import rules of DESIGN §2, checked on the source so they cannot quietly erode."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ["models", "store", "service", "outbox", "checks", "audit", "settings"]


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def roots(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def test_states_imports_only_the_standard_library() -> None:
    names = roots(imported(ROOT / "workflow" / "states.py"))
    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names


@pytest.mark.parametrize("module", CORE)
def test_core_knows_no_slack_no_http_no_blocks(module: str) -> None:
    names = roots(imported(ROOT / "workflow" / f"{module}.py"))
    assert not names & {"slack_bolt", "slack_sdk", "httpx", "blocks"}, names


def test_destinations_know_no_database_and_no_blocks() -> None:
    for path in (ROOT / "workflow" / "destinations").glob("*.py"):
        names = roots(imported(path))
        assert not names & {"sqlmodel", "sqlalchemy", "blocks"}, (path.name, names)


def test_only_listeners_import_slack_bolt() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in [ROOT / "app.py", *(ROOT / "workflow").rglob("*.py"), *(ROOT / "blocks").rglob("*.py")]
        if "slack_bolt" in roots(imported(path)) and path.name != "listeners.py"
    ]
    assert offenders == []


def test_blocks_do_no_io() -> None:
    forbidden = {"slack_sdk", "slack_bolt", "httpx", "sqlmodel", "sqlalchemy", "socket", "urllib", "requests", "os"}
    for path in (ROOT / "blocks").glob("*.py"):
        names = imported(path)
        assert not roots(names) & forbidden, (path.name, names)
        internal = {n for n in names if n.startswith("workflow")}
        assert internal <= {"workflow.states", "workflow.views"}, (path.name, internal)
