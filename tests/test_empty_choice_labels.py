"""Select boxes show a translated empty choice, never Django's default "---------"."""

import re

from django.test import Client

from tests.access_registry import ADMIN, MANAGER, REP, URL_ACCESS, OrgUrl
from tests.test_access_control import _path, project_patterns, world  # noqa: F401 (world is a fixture)

# A <select> whose options include Django's untranslated default empty label.
SELECT_WITH_DJANGO_EMPTY_LABEL = re.compile(r'<select[^>]*name="([^"]+)"[^>]*>(?:(?!</select>).)*?<option[^>]*>\s*-{9}\s*</option>', re.DOTALL)


def test_no_page_shows_django_empty_label(world):  # noqa: F811
    found = []
    for pattern in project_patterns():
        rule = URL_ACCESS.get(pattern.name)
        if not isinstance(rule, OrgUrl) or rule.get_status != 200:
            continue
        for role in (ADMIN, MANAGER, REP):
            if role not in rule.roles:
                continue
            values = {param: world.value(kind, world.visible_owner[role]) for param, kind in rule.params.items()}
            path = _path(pattern, world.org.slug, values)
            client = Client()
            client.force_login(world.probe_member[role].user)
            response = client.get(path)
            if response.streaming or not response["Content-Type"].startswith("text/html"):
                continue
            for name in SELECT_WITH_DJANGO_EMPTY_LABEL.findall(response.content.decode()):
                found.append(f"{path} as {role}: {name}")

    assert found == [], "\n".join(found)
