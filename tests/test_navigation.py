"""The menu of each role links exactly the pages that docs/access.md marks as its menu entries."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.test import Client

ACCESS_DOC = Path(__file__).resolve().parent.parent / "docs" / "access.md"
ORG_PREFIX = "/o/acme/"
ROLE_LETTERS = {"rep": "R", "manager": "M", "admin": "A"}


def documented_menu_paths(role: str) -> set[str]:
    """Return the first path of every row of the pages table that names a menu entry for `role`."""
    paths = set()
    for line in ACCESS_DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("path", "---"):
            continue
        path_cell, _page, roles, menu = cells
        if ROLE_LETTERS[role] not in roles.replace(" ", "").split(",") or menu == "–":
            continue
        first_path = re.search(r"`([^`]*)`", path_cell)
        paths.add(first_path[1] if first_path else "")
    return paths


class _NavLinks(HTMLParser):
    """Collects the href of every link inside the page's <nav> elements."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "nav":
            self.depth += 1
        elif tag == "a" and self.depth:
            self.hrefs.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag):
        if tag == "nav":
            self.depth -= 1


def menu_paths(membership) -> set[str]:
    client = Client()
    client.force_login(membership.user)
    response = client.get(f"{ORG_PREFIX}me/")
    assert response.status_code == 200
    parser = _NavLinks()
    parser.feed(response.content.decode())
    return {href.removeprefix(ORG_PREFIX) for href in parser.hrefs if href.startswith(ORG_PREFIX)}


def test_access_doc_lists_menu_rows():
    # Guards the parser: a changed table layout must not make every comparison vacuous.
    assert documented_menu_paths("rep") >= {"me/", "pipeline/", "pipeline/activities/"}


@pytest.mark.parametrize("role", ["rep", "manager", "admin"])
def test_menu_matches_access_doc(role, member, manager_member, admin_member):
    membership = {"rep": member, "manager": manager_member, "admin": admin_member}[role]

    assert menu_paths(membership) == documented_menu_paths(role)


def test_rep_menu_links_pipeline_pages(member):
    paths = menu_paths(member)

    assert "pipeline/" in paths
    assert "pipeline/activities/" in paths
    assert "dashboard/" not in paths
