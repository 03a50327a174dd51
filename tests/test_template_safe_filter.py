"""Templates rely on autoescaping: no template marks a value safe with |safe.

Form widgets (`field`, `field.as_widget`) already return safe HTML, so |safe on them adds
nothing, and on any other value it would let imported text through as markup.
"""

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
SAFE_FILTER = re.compile(r"\|\s*safe\b")


def test_templates_use_no_safe_filter():
    uses = [
        f"{path.relative_to(TEMPLATES)}:{number}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if SAFE_FILTER.search(line)
    ]

    assert uses == []


def test_quota_editor_renders_widgets_as_html(org, admin_member, client):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/quotas/")

    content = response.content.decode()
    assert response.status_code == 200
    assert '<input type="file" name="file"' in content
    assert "&lt;input" not in content
    assert "&lt;select" not in content
