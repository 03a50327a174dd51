"""Access control on every URL pattern of the project, walked from the URL resolver.

tests/access_registry.py says for each named pattern which roles may use it and which object
kinds its parameters are. The walk then probes GET and every unsafe method as anonymous, as
a member of another organization, as each role outside the allowed ones, and with objects of
another organization or outside the member's role, and expects the login redirect or 404.
"""

from dataclasses import dataclass

import pytest
from django.conf import settings
from django.test import Client
from django.shortcuts import resolve_url
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django_scopes import scope, scopes_disabled

from spm.models import Membership, Role
from tests.access_registry import ADMIN, LOGIN, MANAGER, OBJECT_KINDS, REP, URL_ACCESS, GlobalUrl, OrgUrl, TokenUrl
from tests.factories import MembershipFactory, TeamFactory, UserFactory

UNSAFE_METHODS = ("post", "put", "patch", "delete")
ALL_METHODS = ("get", *UNSAFE_METHODS)
# A view that supports none of these returns 405 before it looks anything up, the same for every
# id, so a 405 reveals nothing and counts as denied. GET and POST must be denied outright.
METHODS_405_ACCEPTED = ("put", "patch", "delete")


@dataclass(frozen=True)
class Pattern:
    name: str
    route: str
    view: str
    params: tuple[str, ...]


def _walk(patterns, prefix: str = "", params: tuple[str, ...] = ()):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        names = params + tuple(entry.pattern.regex.groupindex)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route, names)
        elif isinstance(entry, URLPattern):
            yield Pattern(name=entry.name or route, route=route, view=entry.lookup_str, params=names)


def project_patterns() -> list[Pattern]:
    return list(_walk(get_resolver().url_patterns))


def test_registry_covers_every_url_pattern():
    missing = [pattern for pattern in project_patterns() if pattern.name not in URL_ACCESS]

    assert not missing, "\n".join(
        [f"{len(missing)} URL pattern(s) have no access rule in tests/access_registry.py:"]
        + [
            f"  {pattern.name!r} ({pattern.route} → {pattern.view}): add "
            f"URL_ACCESS[{pattern.name!r}] = OrgUrl(roles=..., params={{...}}) or GlobalUrl(anonymous=LOGIN or PUBLIC)"
            for pattern in missing
        ]
    )


def test_registry_params_match_url_parameters():
    mismatched = []
    for pattern in project_patterns():
        rule = URL_ACCESS.get(pattern.name)
        if isinstance(rule, OrgUrl):
            expected = set(pattern.params) - {"org_slug"}
            if set(rule.params) != expected or "org_slug" not in pattern.params:
                mismatched.append(f"{pattern.name}: URL has {sorted(pattern.params)}, registry has {sorted(rule.params)}")
            unknown = set(rule.params.values()) - set(OBJECT_KINDS)
            if unknown:
                mismatched.append(f"{pattern.name}: unknown object kind(s) {sorted(unknown)}; add them to OBJECT_KINDS")
        elif isinstance(rule, GlobalUrl) and "org_slug" in pattern.params:
            mismatched.append(f"{pattern.name}: has org_slug, so it needs an OrgUrl entry")

    assert not mismatched, "\n".join(mismatched)


class World:
    """Two organizations. Acme: an admin, two managers with a team each, and reps; Globex: an admin and a rep."""

    def __init__(self, org, other_org, admin_member, manager_member, member, other_rep, other_org_admin):
        with scopes_disabled():
            south = TeamFactory(organization=org, name="South")
            outside_manager = MembershipFactory(
                organization=org, role=Role.MANAGER, team=south, user=UserFactory(email="manager2@acme.example")
            )
            south.manager = outside_manager
            south.save(update_fields=["manager"])
            outside_rep = MembershipFactory(
                organization=org,
                role=Role.REP,
                team=south,
                manager=outside_manager,
                user=UserFactory(email="rep3@acme.example"),
            )
            foreign_rep = MembershipFactory(
                organization=other_org, role=Role.REP, user=UserFactory(email="rep@globex.example")
            )
        self.org = org
        self.other_org = other_org
        self.probe_member = {ADMIN: admin_member, MANAGER: manager_member, REP: member}
        # A member whose objects each role may see, and one whose objects it may not.
        self.visible_owner = {ADMIN: member, MANAGER: member, REP: member}
        self.hidden_owner = {MANAGER: outside_rep, REP: other_rep}
        self.foreign_owner = foreign_rep
        self.other_org_admin = other_org_admin
        self._objects: dict[tuple[str, int], object] = {}

    def object_for(self, kind: str, owner: Membership):
        key = (kind, owner.pk)
        if key not in self._objects:
            with scope(organization=owner.organization):
                self._objects[key] = OBJECT_KINDS[kind].create(owner)
        return self._objects[key]

    def value(self, kind: str, owner: Membership):
        return OBJECT_KINDS[kind].value(self.object_for(kind, owner))


@pytest.fixture
def world(org, other_org, admin_member, manager_member, member, other_rep, other_org_admin):
    return World(org, other_org, admin_member, manager_member, member, other_rep, other_org_admin)


def _path(pattern: Pattern, org_slug: str | None, values: dict) -> str:
    kwargs = dict(values)
    if org_slug is not None:
        kwargs["org_slug"] = org_slug
    return reverse(pattern.name, kwargs=kwargs)


class Probe:
    """Send requests and collect every unexpected response, so one run lists all failures."""

    def __init__(self):
        self.failures: list[str] = []
        self.count = 0
        self.clients: dict[int | None, Client] = {}

    def client(self, user) -> Client:
        key = None if user is None else user.pk
        if key not in self.clients:
            client = Client()
            if user is not None:
                client.force_login(user)
            self.clients[key] = client
        return self.clients[key]

    def send(self, user, method: str, path: str):
        self.count += 1
        return getattr(self.client(user), method)(path)

    def expect_denied(self, who: str, user, path: str, status: int) -> None:
        for method in ALL_METHODS:
            response = self.send(user, method, path)
            if response.status_code == 405 and method in METHODS_405_ACCEPTED:
                continue
            if response.status_code != status:
                self.failures.append(f"{method.upper()} {path} as {who}: expected {status}, got {response.status_code}")

    def expect_login_or_404(self, path: str) -> None:
        login_url = resolve_url(settings.LOGIN_URL)
        for method in ALL_METHODS:
            response = self.send(None, method, path)
            redirected = response.status_code == 302 and response["Location"].startswith(login_url)
            if not redirected and response.status_code != 404:
                self.failures.append(
                    f"{method.upper()} {path} as anonymous: expected a redirect to {login_url} or 404, "
                    f"got {response.status_code}"
                )


def _probe_org_url(probe: Probe, world: World, pattern: Pattern, rule: OrgUrl) -> None:
    slug = world.org.slug
    allowed_role = next(role for role in (ADMIN, MANAGER, REP) if role in rule.roles)
    visible = {param: world.value(kind, world.visible_owner[allowed_role]) for param, kind in rule.params.items()}
    path = _path(pattern, slug, visible)

    probe.expect_login_or_404(path)
    probe.expect_denied("member of another organization", world.other_org_admin.user, path, 404)

    for role, member in world.probe_member.items():
        if role not in rule.roles:
            probe.expect_denied(f"{role} (not allowed)", member.user, path, rule.denied_status)
            continue

        own = {param: world.value(kind, world.visible_owner[role]) for param, kind in rule.params.items()}
        own_path = _path(pattern, slug, own)
        response = probe.send(member.user, "get", own_path)
        if response.status_code != rule.get_status:
            probe.failures.append(
                f"GET {own_path} as {role}: expected {rule.get_status} for a visible object, got "
                f"{response.status_code}; fix the registry entry or the view"
            )

        for param, kind in rule.params.items():
            foreign = {**own, param: world.value(kind, world.foreign_owner)}
            probe.expect_denied(f"{role} with another organization's {kind}", member.user, _path(pattern, slug, foreign), 404)
            if OBJECT_KINDS[kind].owner_scoped and role in world.hidden_owner:
                hidden = {**own, param: world.value(kind, world.hidden_owner[role])}
                probe.expect_denied(
                    f"{role} with a {kind} outside the role", member.user, _path(pattern, slug, hidden), rule.denied_status
                )


def _probe_global_url(probe: Probe, world: World, pattern: Pattern, rule: GlobalUrl) -> None:
    path = _path(pattern, None, rule.params)
    login_url = resolve_url(settings.LOGIN_URL)
    response = probe.send(None, "get", path)
    if rule.anonymous == LOGIN:
        if not (response.status_code == 302 and response["Location"].startswith(login_url)):
            probe.failures.append(f"GET {path} as anonymous: expected a redirect to {login_url}, got {response.status_code}")
    elif response.status_code >= 500:
        probe.failures.append(f"GET {path} as anonymous: got {response.status_code}")
    response = probe.send(world.probe_member[REP].user, "get", path)
    if response.status_code >= 500:
        probe.failures.append(f"GET {path} as rep: got {response.status_code}")


def _probe_token_url(probe: Probe, world: World, pattern: Pattern, rule: TokenUrl) -> None:
    """Expect 401 without a token, also for an admin's login session: the API ignores sessions."""
    path = _path(pattern, None, rule.params)
    probe.expect_denied("anonymous", None, path, 401)
    probe.expect_denied("admin with a login session", world.probe_member[ADMIN].user, path, 401)


def test_every_url_denies_other_tenants_and_roles(world, capsys):
    probe = Probe()
    patterns = [pattern for pattern in project_patterns() if pattern.name in URL_ACCESS]
    for pattern in patterns:
        rule = URL_ACCESS[pattern.name]
        if isinstance(rule, OrgUrl):
            _probe_org_url(probe, world, pattern, rule)
        elif isinstance(rule, TokenUrl):
            _probe_token_url(probe, world, pattern, rule)
        else:
            _probe_global_url(probe, world, pattern, rule)

    with capsys.disabled():
        print(f"\naccess control: {probe.count} requests over {len(patterns)} URL patterns (URL × role × method)")
    assert probe.count > 0
    assert not probe.failures, f"{len(probe.failures)} of {probe.count} probes failed:\n" + "\n".join(probe.failures)


def test_org_pages_reject_other_methods(world):
    """PUT, PATCH, DELETE and OPTIONS get 405 on every page under /o/, before any view code runs."""
    from spm.models import AuditLog

    targets = []
    for pattern in project_patterns():
        rule = URL_ACCESS.get(pattern.name)
        if not isinstance(rule, OrgUrl):
            continue
        role = next(role for role in (ADMIN, MANAGER, REP) if role in rule.roles)
        values = {param: world.value(kind, world.visible_owner[role]) for param, kind in rule.params.items()}
        targets.append((role, _path(pattern, world.org.slug, values)))
    probe = Probe()
    for member in world.probe_member.values():
        probe.client(member.user)
    # Creating the objects and logging in write audit rows; the requests below must write none.
    with scopes_disabled():
        audit_rows_before = AuditLog.objects.count()

    for role, path in targets:
        for method in ("put", "patch", "delete", "options"):
            response = probe.send(world.probe_member[role].user, method, path)
            if response.status_code != 405 or response.get("Allow") != "GET, HEAD, POST":
                probe.failures.append(
                    f"{method.upper()} {path} as {role}: expected 405 with Allow: GET, HEAD, POST, got "
                    f"{response.status_code} with Allow: {response.get('Allow')}"
                )

    assert probe.count > 0
    assert not probe.failures, f"{len(probe.failures)} of {probe.count} probes failed:\n" + "\n".join(probe.failures)
    with scopes_disabled():
        assert AuditLog.objects.count() == audit_rows_before
