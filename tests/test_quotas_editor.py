"""Quota editor pages: the grid, a cell POST (full page and htmx), paste, upload, templates, access."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django_scopes import scopes_disabled

from goals.models import Quota, QuotaTemplate
from spm.models import AuditLog
from tests.factories import TeamFactory

EDITOR = "/o/acme/quotas/"
CELL = "/o/acme/quotas/cell/"


@pytest.fixture
def admin_client(client, admin_member):
    client.force_login(admin_member.user)
    return client


def quota_of(member, start=dt.date(2025, 1, 1)):
    with scopes_disabled():
        return Quota.objects.filter(membership=member, period_start=start, metric="won_revenue").first()


def cell_post(client, subject_id, value, *, level="rep", period="2025-Q1", htmx=False, reason=""):
    data = {"year": 2025, "granularity": "quarter", "level": level, "metric": "won_revenue",
            "subject": subject_id, "period": period, "value": value, "reason": reason}  # fmt: skip
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(CELL, data, **headers)


def test_editor_lists_reps_and_periods(admin_client, member):
    response = admin_client.get(EDITOR, {"year": 2025, "granularity": "quarter"})

    body = response.content.decode()
    assert response.status_code == 200
    assert "2025-Q1" in body
    assert "2025-Q4" in body
    assert f'id="quota-cell-{member.pk}-0"' in body


def test_editor_htmx_returns_only_grid(admin_client, member):
    response = admin_client.get(EDITOR, {"year": 2025}, HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert body.lstrip().startswith('<div id="quota-grid">')
    assert "<html" not in body
    assert "HX-Request" in response["Vary"]


def test_cell_post_full_page_redirects_and_saves(admin_client, member):
    response = cell_post(admin_client, member.pk, "12.500,00", reason="Planning 2025")

    assert response.status_code == 302
    assert response["Location"].startswith(EDITOR)
    assert quota_of(member).target == Decimal("12500.00")
    with scopes_disabled():
        entry = AuditLog.objects.get(action="quota.created")
    assert entry.before is None
    assert entry.after["target"] == "12500.00"
    assert entry.after["reason"] == "Planning 2025"
    assert entry.actor_id is not None


def test_cell_post_htmx_returns_cell_and_total(admin_client, member, other_rep):
    with scopes_disabled():
        Quota.objects.create(organization=member.organization, level="rep", membership=other_rep, period_kind="quarter",
                             period_start=dt.date(2025, 1, 1), metric="won_revenue", target=Decimal(1000))  # fmt: skip
    cell_post(admin_client, member.pk, "9000")

    response = cell_post(admin_client, member.pk, "9.500,5", htmx=True)

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith(f'<td id="quota-cell-{member.pk}-0"')
    assert 'value="9,500.50"' in body
    # The total row: 9500.50 + 1000.
    assert 'id="quota-total-0" class="num fw-semibold" hx-swap-oob="true">10,500.50</td>' in body
    with scopes_disabled():
        entry = AuditLog.objects.filter(action="quota.changed").latest("pk")
    assert entry.before["target"] == "9000.00"
    assert entry.after["target"] == "9500.50"


def test_cell_post_invalid_number_shows_error(admin_client, member):
    response = cell_post(admin_client, member.pk, "zehn", htmx=True)

    body = response.content.decode()
    assert 'aria-invalid="true"' in body
    assert "invalid number" in body
    assert quota_of(member) is None


def test_cell_post_empty_value_deletes(admin_client, member):
    cell_post(admin_client, member.pk, "9000")

    cell_post(admin_client, member.pk, "")

    assert quota_of(member) is None
    with scopes_disabled():
        assert AuditLog.objects.filter(action="quota.deleted").count() == 1


def test_team_cell_shows_roll_up_then_explicit(admin_client, member, team):
    cell_post(admin_client, member.pk, "9000")

    grid = admin_client.get(EDITOR, {"year": 2025, "granularity": "quarter", "level": "team"}).content.decode()
    response = cell_post(admin_client, team.pk, "5000", level="team", htmx=True)

    assert "quota-rollup" in grid
    assert 'placeholder="9,000.00"' in grid
    body = response.content.decode()
    assert "quota-rollup" not in body.split("</td>")[0]
    assert 'value="5,000.00"' in body


def test_team_edit_updates_parent_roll_up_out_of_band(admin_client, org, member, team):
    with scopes_disabled():
        parent = TeamFactory(organization=org, name="DACH")
        team.parent = parent
        team.save()

    response = cell_post(admin_client, team.pk, "5000", level="team", htmx=True)

    body = response.content.decode()
    assert f'id="quota-cell-{parent.pk}-0" class="quota-cell num quota-rollup" hx-swap-oob="true"' in body
    assert 'placeholder="5,000.00"' in body


def test_paste_block_saves_all_cells(admin_client, member, other_rep):
    data = {"year": 2025, "granularity": "quarter", "level": "rep", "metric": "won_revenue",
            "subject": member.pk, "period": "2025-Q1", "block": "12.500,00\t13.000,00\r\n1000\t2000\r\n"}  # fmt: skip
    with scopes_disabled():
        ordered = sorted([member, other_rep], key=lambda m: (m.user.name, m.user.email))

    response = admin_client.post("/o/acme/quotas/paste/", data, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    if ordered[0] != member:
        # The paste starts at `member`; with another rep above it, only one row of the block fits.
        assert "lies outside the grid" in response.content.decode()
        return
    assert quota_of(member).target == Decimal("12500.00")
    assert quota_of(member, dt.date(2025, 4, 1)).target == Decimal("13000.00")
    assert quota_of(other_rep).target == Decimal("1000.00")
    assert quota_of(other_rep, dt.date(2025, 4, 1)).target == Decimal("2000.00")


def test_paste_with_bad_cell_saves_nothing(admin_client, member):
    data = {"year": 2025, "granularity": "quarter", "level": "rep", "metric": "won_revenue",
            "subject": member.pk, "period": "2025-Q1", "block": "100\tabc\t300"}  # fmt: skip

    response = admin_client.post("/o/acme/quotas/paste/", data, HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert "Row 1, column 2 (" in body
    assert "), value abc: invalid number; expected for example 12,500.00." in body
    assert quota_of(member) is None


def test_upload_page_reports_result(admin_client, member):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("q.csv", b"level;name;period;metric;target\nrep;rep@acme.example;2025-Q1;won_revenue;9.000\n")

    response = admin_client.post("/o/acme/quotas/upload/", {"file": upload})

    assert response.status_code == 200
    assert "1 created, 0 changed, 0 unchanged, 0 rejected." in response.content.decode()
    assert quota_of(member).target == Decimal("9000.00")


def test_template_apply_sets_quotas(admin_client, org, member, other_rep):
    with scopes_disabled():
        template = QuotaTemplate.objects.create(organization=org, name="Standard", metric="won_revenue",
                                                period_kind="quarter", target=Decimal(30000))  # fmt: skip

    response = admin_client.post(
        "/o/acme/quotas/templates/apply/",
        {"template": template.pk, "period": "2025-Q1", "members": [member.pk, other_rep.pk], "reason": "Standard"},
    )

    assert response.status_code == 302
    assert quota_of(member).target == Decimal("30000.00")
    assert quota_of(other_rep).target == Decimal("30000.00")


def test_off_calendar_quota_listed(admin_client, org, member):
    with scopes_disabled():
        Quota.objects.create(organization=org, level="rep", membership=member, period_kind="quarter",
                             period_start=dt.date(2025, 2, 1), metric="won_revenue", target=Decimal(7000))  # fmt: skip

    body = admin_client.get(EDITOR, {"year": 2025}).content.decode()

    assert "Off-calendar quotas" in body
    assert "7,000.00" in body


@pytest.mark.parametrize("url", [EDITOR, "/o/acme/settings/", "/o/acme/structure/", "/o/acme/people/"])
def test_admin_pages_404_for_manager_and_rep(client, url, manager_member, member):
    for user in (manager_member.user, member.user):
        client.force_login(user)
        assert client.get(url).status_code == 404


def test_cell_post_404_for_rep(client, member):
    client.force_login(member.user)

    assert cell_post(client, member.pk, "9000").status_code == 404
    assert quota_of(member) is None


def test_other_org_admin_gets_404(client, admin_member, other_org_admin):
    client.force_login(other_org_admin.user)

    assert client.get(EDITOR).status_code == 404
    assert client.get("/o/acme/settings/").status_code == 404


def test_cell_post_for_other_org_subject_fails(admin_client, other_org_admin):
    response = cell_post(admin_client, other_org_admin.pk, "9000")

    assert response.status_code == 404
    with scopes_disabled():
        assert not Quota.objects.exists()
    assert admin_client.get(EDITOR).status_code == 200


def test_settings_page_saves_fiscal_month(admin_client, org):
    data = {"fiscal_year_start_month": 2, "time_zone": "Europe/Berlin", "currency": "EUR", "language": "de",
            "attainment_warning_percent": "70.0", "leaderboard_privacy": "names", "minimum_group_size": 0}  # fmt: skip

    response = admin_client.post("/o/acme/settings/", data)

    assert response.status_code == 302
    org.refresh_from_db()
    assert org.fiscal_year_start_month == 2


def test_structure_rejects_team_cycle(admin_client, org, team):
    with scopes_disabled():
        child = TeamFactory(organization=org, name="Child", parent=team)

    response = admin_client.post(
        "/o/acme/structure/", {"kind": "team", "pk": team.pk, "team-name": "North", "team-parent": child.pk}, follow=True
    )

    assert "choose a parent outside its subtree" in response.content.decode()
    team.refresh_from_db()
    assert team.parent_id is None


def test_person_assignment_change_closes_previous(admin_client, org, member, team):
    with scopes_disabled():
        south = TeamFactory(organization=org, name="South")

    admin_client.post(
        f"/o/acme/people/{member.pk}/",
        {"kind": "assignment", "assignment-team": south.pk, "assignment-valid_from": "2025-03-01"},
    )

    with scopes_disabled():
        rows = list(member.assignments.order_by("valid_from").values_list("team_id", "valid_from", "valid_to"))
    assert rows == [(team.pk, dt.date(1900, 1, 1), dt.date(2025, 3, 1)), (south.pk, dt.date(2025, 3, 1), None)]


def test_editor_opens_on_latest_year_with_quotas(admin_client, member):
    cell_post(admin_client, member.pk, "12500")  # a quota in 2025-Q1; today lies in a later year

    response = admin_client.get(EDITOR)

    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="quota-cell-{member.pk}-0"' in body
    assert "2025-Q1" in body
    assert "12,500.00" in body


def test_editor_opens_on_current_year_without_quotas(admin_client, member):
    from django.utils import timezone

    response = admin_client.get(EDITOR)

    assert response.status_code == 200
    assert f"{timezone.localdate().year}-Q1" in response.content.decode()


def test_editor_ids_unique(admin_client, member):
    body = admin_client.get(EDITOR, {"year": 2025}).content.decode()

    ids = re.findall(r'\sid="([^"]+)"', body)
    assert sorted(name for name in set(ids) if ids.count(name) > 1) == []
