"""Ids beyond the 64-bit integer range, in query strings, forms and URL paths, on every page.

SQLite raises OverflowError for an integer parameter above 2**63 - 1, so an unchecked id
turned a mistyped link into a 500. Every page must respond to such an id like any other
invalid or unknown id: with a message (400 or a form error) or 404.
"""

import pytest
from django import forms
from django.test import Client
from django.urls import get_resolver, reverse

from spm.ids import IdModelChoiceField, IdModelMultipleChoiceField, id_parse
from tests.access_registry import ADMIN, MANAGER, REP, URL_ACCESS, OrgUrl
from tests.test_access_control import World, project_patterns

# 10**20: above 2**64, so also above SQLite's and PostgreSQL's bigint maximum of 2**63 - 1.
HUGE_ID = "99999999999999999999"

# The query parameters of the project that carry an id, with the parameters each one needs.
QUERY_CASES = [
    f"team={HUGE_ID}",
    f"owner={HUGE_ID}",
    f"stage={HUGE_ID}",
    f"grain=rep&subject={HUGE_ID}",
    f"grain=team&subject={HUGE_ID}",
    f"grain=territory&subject={HUGE_ID}",
    f"pipeline={HUGE_ID}",
    f"actor={HUGE_ID}",
    f"viewer={HUGE_ID}",
    f"subject={HUGE_ID}",
    f"analysis=funnel&period=2017&key={HUGE_ID}",
    f"analysis=funnel&period=2017&key=won:{HUGE_ID}",
    f"analysis=stalled&key={HUGE_ID}",
    f"analysis=winloss&period=2017&key=product:won:{HUGE_ID}",
    f"analysis=winloss&period=2017&key=territory:won:{HUGE_ID}",
    f"page={HUGE_ID}",
    # "²" passes str.isdigit() but int() rejects it.
    "owner=%C2%B2",
    "analysis=funnel&period=2017&key=%C2%B2",
    "analysis=funnel&period=2017&key=won:%C2%B2",
]

# The form fields of the project that name an object by id, under the names the views read.
# One POST sends all of them, so each view finds the fields it reads.
ID_FORM_FIELDS = [
    "account",
    "assignment-team",
    "assignment-territory",
    "competency",
    "leave",
    "manager",
    "member",
    "member-ramp_schedule",
    "members",
    "owner",
    "page_member",
    "participants",
    "pk",
    "rep",
    "stage",
    "stage_id",
    "subject",
    "team",
    "team-manager",
    "team-parent",
    "teams",
    "template",
    "territory",
    "territory-parent",
]
# Pages whose POST picks a form by `kind`. Every other page gets one POST without it.
FORM_KINDS = {
    "goals_structure": ["team", "territory", "ramp"],
    "goals_person": ["member", "assignment", "leave", "leave_delete"],
}
# Top-level packages whose forms must check ids.
PROJECT_APPS = {"coaching", "dashboards", "goals", "integrations", "pipelines", "spm"}
# An id beyond the range, and text that is no id at all.
BAD_IDS = [HUGE_ID, "abc"]


@pytest.fixture
def world(org, other_org, admin_member, manager_member, member, other_rep, other_org_admin):
    return World(org, other_org, admin_member, manager_member, member, other_rep, other_org_admin)


def _org_patterns():
    for pattern in project_patterns():
        rule = URL_ACCESS.get(pattern.name)
        if isinstance(rule, OrgUrl):
            yield pattern, rule


def _visible_path(world, pattern, rule, role):
    values = {param: world.value(kind, world.visible_owner[role]) for param, kind in rule.params.items()}
    return reverse(pattern.name, kwargs={"org_slug": world.org.slug, **values})


def _failures(responses) -> list[str]:
    return [f"{method} {path}: {status}" for method, path, status in responses if status >= 500]


def test_huge_query_ids_never_fail_with_500(world):
    # A 500 is counted, not raised, so one run lists every failing page.
    client = Client(raise_request_exception=False)
    responses = []
    # Admins open every page. The deal list also checks ids against what the role may see,
    # so managers and reps probe it too.
    for role in (ADMIN, MANAGER, REP):
        client.force_login(world.probe_member[role].user)
        for pattern, rule in _org_patterns():
            if role not in rule.roles or rule.get_status == 405 or (role != ADMIN and pattern.name != "deal_list"):
                continue
            path = _visible_path(world, pattern, rule, role)
            for query in QUERY_CASES:
                response = client.get(f"{path}?{query}")
                responses.append(("GET", f"{path}?{query} as {role}", response.status_code))

    failures = _failures(responses)
    assert not failures, "\n".join(failures)


def test_huge_form_ids_never_fail_with_500(world):
    # A 500 is counted, not raised, so one run lists every failing page.
    client = Client(raise_request_exception=False)
    # The objects are created before any POST, so a POST cannot collide with a fixture object.
    targets = [
        (role, pattern.name, _visible_path(world, pattern, rule, role))
        for role in (ADMIN, MANAGER)
        for pattern, rule in _org_patterns()
        if role in rule.roles
    ]
    responses = []
    for role, name, path in targets:
        client.force_login(world.probe_member[role].user)
        for kind in FORM_KINDS.get(name, [""]):
            for bad_id in BAD_IDS:
                data = {field: bad_id for field in ID_FORM_FIELDS}
                data.update(kind=kind, name="Huge", period="2017", year="2017", value="5", starts_on="2017-01-01")
                response = client.post(path, data)
                responses.append(("POST", f"{path} kind={kind!r} id={bad_id} as {role}", response.status_code))

    failures = _failures(responses)
    assert not failures, "\n".join(failures)


def test_huge_path_ids_are_404(world):
    # A 500 is counted, not raised, so one run lists every failing page.
    client = Client(raise_request_exception=False)
    responses = []
    client.force_login(world.probe_member[ADMIN].user)
    for pattern, rule in _org_patterns():
        if ADMIN not in rule.roles:
            continue
        visible = {param: world.value(kind, world.visible_owner[ADMIN]) for param, kind in rule.params.items()}
        for param in rule.params:
            path = reverse(pattern.name, kwargs={"org_slug": world.org.slug, **visible, param: int(HUGE_ID)})
            for method in ("get", "post"):
                status = getattr(client, method)(path).status_code
                if status not in (404, 405):
                    responses.append((method.upper(), path, status))

    assert not responses, "\n".join(f"{method} {path}: expected 404, got {status}" for method, path, status in responses)


@pytest.mark.parametrize(
    "query, parameter",
    [
        (f"owner={HUGE_ID}", "owner"),
        (f"team={HUGE_ID}", "team"),
        (f"stage={HUGE_ID}", "stage"),
        (f"grain=rep&subject={HUGE_ID}", "subject"),
        (f"grain=team&subject={HUGE_ID}", "subject"),
        (f"grain=territory&subject={HUGE_ID}", "subject"),
    ],
)
def test_deal_list_rejects_huge_id(client, member, query, parameter):
    client.force_login(member.user)

    response = client.get(f"/o/acme/deals/?{query}")

    assert response.status_code == 400
    assert (
        f"Invalid {parameter} &#x27;{HUGE_ID}&#x27;; no id is that large, use an id from the page, e.g. {parameter}=12."
        in response.content.decode()
    )


def test_contest_form_rejects_huge_participant(client, manager_member, member):
    client.force_login(manager_member.user)
    data = {
        "name": "Spring",
        "metric": "won_revenue",
        "starts_on": "2026-12-01",
        "ends_on": "2026-12-31",
        "normalization": "absolute",
        "participants": [str(member.pk), HUGE_ID],
    }

    response = client.post("/o/acme/contests/new/", data)

    assert response.status_code == 400
    assert response.context["form"].errors["participants"] == [
        f"Select a valid choice. {HUGE_ID} is not one of the available choices."
    ]


def test_quota_template_apply_rejects_huge_ids(client, admin_member, member):
    client.force_login(admin_member.user)

    response = client.post(
        "/o/acme/quotas/templates/apply/", {"template": HUGE_ID, "period": "2017", "members": [HUGE_ID]}
    )

    assert response.status_code == 400
    errors = response.context["apply_form"].errors
    assert errors["template"] == ["Select a valid choice. That choice is not one of the available choices."]
    assert errors["members"] == [f"Select a valid choice. {HUGE_ID} is not one of the available choices."]


def _form_classes(base=forms.Form):
    for subclass in base.__subclasses__():
        yield subclass
        yield from _form_classes(subclass)


def test_project_forms_check_id_range_before_querying():
    # Resolving the URL patterns imports every view module and so every form.
    assert get_resolver().url_patterns
    unchecked = []
    for form_class in _form_classes():
        if not form_class.__module__.split(".")[0] in PROJECT_APPS:
            continue
        for name, field in form_class.base_fields.items():
            if isinstance(field, forms.ModelChoiceField) and not isinstance(
                field, (IdModelChoiceField, IdModelMultipleChoiceField)
            ):
                unchecked.append(f"{form_class.__module__}.{form_class.__name__}.{name}")

    assert not unchecked, "use spm.ids.IdModelChoiceField or IdModelMultipleChoiceField for: " + ", ".join(unchecked)


@pytest.mark.parametrize(
    "text, expected",
    [("12", 12), (" 12 ", 12), ("0", 0), (str(2**63 - 1), 2**63 - 1), (str(2**63), None), ("²", None), ("-1", None), ("", None)],
)
def test_id_parse(text, expected):
    assert id_parse(text) == expected
