"""A quota cell POST whose subject id is malformed, unknown or of another organization gets a 404 and saves nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scopes_disabled

from goals.models import Quota
from spm.models import AuditLog
from tests.factories import (
    MembershipFactory,
    TeamFactory,
    TerritoryFactory,
    UserFactory,
)

CELL = "/o/acme/quotas/cell/"
Q1 = dt.date(2025, 1, 1)
# int() accepts Arabic-Indic digits, a plus sign and underscores between digits, so such ids named a real member.
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def cell_post(client, subject_id, value, *, level="rep", htmx=False):
    data = {"year": 2025, "granularity": "quarter", "level": level, "metric": "won_revenue",
            "subject": subject_id, "period": "2025-Q1", "value": value}  # fmt: skip
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(CELL, data, **headers)


def quota_rows():
    """Return every quota of every organization as (organization slug, level, subject id, target)."""
    with scopes_disabled():
        return sorted(
            (quota.organization.slug, quota.level, quota.membership_id or quota.team_id or quota.territory_id, quota.target)
            for quota in Quota.objects.select_related("organization")
        )


def quota_audit_count():
    with scopes_disabled():
        return AuditLog.objects.filter(action__startswith="quota.").count()


@pytest.fixture
def foreign_subjects(other_org):
    """A rep, a team and a territory of Globex, each with a quota of 1,000 for 2025-Q1."""
    with scopes_disabled():
        subjects = {
            "rep": MembershipFactory(organization=other_org, role="rep", user=UserFactory(email="rep@globex.example")),
            "team": TeamFactory(organization=other_org, name="Globex East"),
            "territory": TerritoryFactory(organization=other_org, name="Globex West"),
        }
        for level, subject in subjects.items():
            field = {"rep": "membership", "team": "team", "territory": "territory"}[level]
            Quota.objects.create(organization=other_org, level=level, period_kind="quarter", period_start=Q1,
                                 metric="won_revenue", target=Decimal(1000), **{field: subject})  # fmt: skip
    return subjects


@pytest.fixture
def own_quota(member):
    """A quota of 2,000 for `member` in 2025-Q1."""
    with scopes_disabled():
        Quota.objects.create(organization=member.organization, level="rep", membership=member, period_kind="quarter",
                             period_start=Q1, metric="won_revenue", target=Decimal(2000))  # fmt: skip


@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize("level", ["rep", "team", "territory"])
@pytest.mark.parametrize("value", ["5", ""])
def test_cell_foreign_subject_is_404(admin_client, own_quota, foreign_subjects, level, htmx, value):
    before = quota_rows()
    foreign_id = foreign_subjects[level].pk

    response = cell_post(admin_client, foreign_id, value, level=level, htmx=htmx)

    assert response.status_code == 404
    assert quota_rows() == before
    assert ("globex", level, foreign_id, Decimal("1000.00")) in before
    assert quota_audit_count() == 0


@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize("level", ["rep", "team", "territory"])
def test_cell_unknown_subject_is_404(admin_client, member, own_quota, level, htmx):
    response = cell_post(admin_client, 999999, "5", level=level, htmx=htmx)

    assert response.status_code == 404
    assert quota_rows() == [("acme", "rep", member.pk, Decimal("2000.00"))]
    assert quota_audit_count() == 0


@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize("form", ["letters", "plus_sign", "underscore", "arabic_indic", "too_large", "missing"])
def test_cell_malformed_subject_is_404(admin_client, member, form, htmx):
    subject = {
        "letters": "abc",
        "plus_sign": f"+{member.pk}",
        "underscore": f"0_{member.pk}",
        "arabic_indic": str(member.pk).translate(ARABIC_INDIC),
        "too_large": str(2**63),
        "missing": "",
    }[form]

    response = cell_post(admin_client, subject, "5", htmx=htmx)

    assert response.status_code == 404
    assert quota_rows() == []
    assert quota_audit_count() == 0


def test_cell_own_subject_still_saves(admin_client, member):
    response = cell_post(admin_client, member.pk, "5", htmx=True)

    assert response.status_code == 200
    assert quota_rows() == [("acme", "rep", member.pk, Decimal("5.00"))]
    assert quota_audit_count() == 1


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_cell_member_outside_grid_shows_error(admin_client, member, role):
    """A member of this organization who is no rep row (a page opened before a role change) gets the grid with the message."""
    with scopes_disabled():
        other = MembershipFactory(organization=member.organization, role=role, user=UserFactory(email=f"other-{role}@acme.example"))

    response = cell_post(admin_client, other.pk, "5", htmx=True)

    assert response.status_code == 200
    assert response["HX-Retarget"] == "#quota-grid"
    assert response["HX-Reswap"] == "outerHTML"
    body = response.content.decode()
    assert 'id="quota-grid"' in body
    assert "5 was not saved:" in body
    assert "rep quotas are for members with the rep role" in body
    assert quota_rows() == []
    assert quota_audit_count() == 0
