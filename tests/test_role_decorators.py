"""Role checks of views come from spm.security, so every admin page rejects other roles the same way.

tests/test_access_control.py checks what each role sees; these tests keep modules from
growing their own copies of the decorator, which could drift apart from it.
"""

import ast
import importlib
from pathlib import Path

import pytest

from spm import security

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("coaching", "dashboards", "goals", "integrations", "pipelines", "spm")
# Names of the role checks that modules used to define for themselves.
ROLE_CHECK_NAMES = {"admin_required", "_require_admin", "_require_leader"}


def role_check_definitions() -> list[str]:
    """Return `path:line name` for every function with a role check's name outside spm/security.py."""
    found = []
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            relative = path.relative_to(PROJECT_ROOT).as_posix()
            if relative == "spm/security.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=relative)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in ROLE_CHECK_NAMES:
                    found.append(f"{relative}:{node.lineno} {node.name}")
    return found


def test_no_module_defines_own_role_check():
    assert role_check_definitions() == []


@pytest.mark.parametrize(
    "module_name",
    [
        "goals.views_admin",
        "goals.views_forecast",
        "pipelines.views_imports",
        "pipelines.views_scoring",
        "integrations.sync.views",
        "coaching.skills.views",
    ],
)
def test_views_use_security_admin_required(module_name):
    module = importlib.import_module(module_name)

    assert module.admin_required is security.admin_required
