"""Works-council privacy: pseudonyms, the scorecard view log, the register of personal metrics."""

import datetime as dt

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from goals.models import ScorecardView
from goals.privacy import pseudonym_numbers, scorecard_view_list, scorecard_view_record
from spm.models import LeaderboardPrivacy
from tests.attainment_data import rep_create


@pytest.fixture
def pseudonymous(org):
    with scopes_disabled():
        org.leaderboard_privacy = LeaderboardPrivacy.PSEUDONYMS
        org.save(update_fields=["leaderboard_privacy"])
    return org


@pytest.fixture
def twelve_reps(org, admin_member):
    """The admin and twelve reps added in name order, like an import file: 13 memberships in id order."""
    with scopes_disabled():
        return [admin_member] + [rep_create(org, f"Rep person {index:02d}") for index in range(1, 13)]


def test_pseudonym_numbers_hide_membership_id_order(org, twelve_reps):
    with scope(organization=org):
        numbers = pseudonym_numbers(period_key="2025-Q1")

    by_id = {member.pk: position for position, member in enumerate(twelve_reps, start=1)}
    assert sorted(numbers) == sorted(by_id)
    assert sorted(numbers.values()) == list(range(1, 14))
    # A keyed order of 13 members matches the id order with a chance of 1 in 13!.
    assert numbers != by_id


def test_pseudonym_numbers_stay_within_period(org, twelve_reps):
    with scope(organization=org):
        first = pseudonym_numbers(period_key="2025-Q1")
        again = pseudonym_numbers(period_key="2025-Q1")
        next_quarter = pseudonym_numbers(period_key="2025-Q2")

    assert again == first
    assert next_quarter != first


def test_pseudonym_numbers_depend_on_secret_key(org, twelve_reps, settings):
    with scope(organization=org):
        before = pseudonym_numbers(period_key="2025-Q1")
        settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
        after = pseudonym_numbers(period_key="2025-Q1")

    assert after != before


def test_pseudonyms_do_not_change_with_names(org, member, other_rep):
    with scope(organization=org):
        before = pseudonym_numbers(period_key="2025-Q1")[other_rep.pk]
    with scopes_disabled():
        other_rep.user.name = "Zoe Renamed"
        other_rep.user.save(update_fields=["name"])
    with scope(organization=org):
        after = pseudonym_numbers(period_key="2025-Q1")[other_rep.pk]

    assert before == after


def test_own_view_is_not_logged(org, member):
    with scope(organization=org):
        view = scorecard_view_record(organization=org, viewer=member, subject=member)

        assert view is None
        assert ScorecardView.objects.count() == 0


def test_view_list_filters(org, admin_member, manager_member, member, other_rep):
    with scope(organization=org):
        first = scorecard_view_record(organization=org, viewer=manager_member, subject=member)
        second = scorecard_view_record(organization=org, viewer=admin_member, subject=other_rep)
        ScorecardView.objects.filter(pk=first.pk).update(viewed_at=timezone.now() - dt.timedelta(days=10))

        by_viewer = list(scorecard_view_list(viewer_id=manager_member.pk))
        by_subject = list(scorecard_view_list(subject_id=other_rep.pk))
        recent = list(scorecard_view_list(since=timezone.now() - dt.timedelta(days=1)))
        everything = list(scorecard_view_list())

    assert by_viewer == [first]
    assert by_subject == [second]
    assert recent == [second]
    assert everything == [second, first]


def test_rep_sees_pseudonym_on_leaderboard_page(client, pseudonymous, member, other_rep):
    with scopes_disabled():
        other_rep.user.name = "Olga Other"
        other_rep.user.save(update_fields=["name"])
    client.force_login(member.user)

    body = client.get("/o/acme/leaderboard/", {"ranking": "absolute", "period": "2025-Q1"}).content.decode()

    assert "Olga Other" not in body
    with scope(organization=pseudonymous):
        number = pseudonym_numbers(period_key="2025-Q1")[other_rep.pk]
    assert f"Rep {number}" in body


def test_rep_cannot_open_other_scorecard_in_any_mode(client, pseudonymous, member, other_rep):
    client.force_login(member.user)

    assert client.get(f"/o/acme/reps/{other_rep.pk}/").status_code == 404


def test_view_log_page_for_admin(client, org, admin_member, manager_member, member):
    client.force_login(manager_member.user)
    client.get(f"/o/acme/reps/{member.pk}/")
    client.force_login(admin_member.user)

    response = client.get("/o/acme/privacy/views/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" in body
    assert body.count("<tr>") == 2  # header and one view
    assert manager_member.display_name in body
    assert member.display_name in body


def test_view_log_fragment_filters_by_viewer(client, org, admin_member, manager_member, member):
    client.force_login(manager_member.user)
    client.get(f"/o/acme/reps/{member.pk}/")
    client.force_login(admin_member.user)

    fragment = client.get("/o/acme/privacy/views/", {"viewer": admin_member.pk}, HTTP_HX_REQUEST="true")

    body = fragment.content.decode()
    assert "<html" not in body
    assert "No scorecard views match." in body


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("en", "The start date must not be after the end date."),
        ("de", "Das Startdatum darf nicht nach dem Enddatum liegen."),
    ],
)
def test_view_log_rejects_reversed_dates(client, org, admin_member, manager_member, member, language, message):
    with scopes_disabled():
        admin_member.user.language = language
        admin_member.user.save(update_fields=["language"])
    client.force_login(manager_member.user)
    client.get(f"/o/acme/reps/{member.pk}/")
    client.force_login(admin_member.user)

    response = client.get("/o/acme/privacy/views/", {"since": "2026-12-31", "until": "2026-12-01"})

    body = response.content.decode()
    assert response.status_code == 400
    assert message in body
    assert "data-view-log" not in body


def test_view_log_fragment_shows_filter_error(client, org, admin_member, manager_member, member):
    client.force_login(manager_member.user)
    client.get(f"/o/acme/reps/{member.pk}/")
    client.force_login(admin_member.user)

    fragment = client.get(
        "/o/acme/privacy/views/", {"since": "2026-12-31", "until": "2026-12-01"}, HTTP_HX_REQUEST="true"
    )

    body = fragment.content.decode()
    assert fragment.status_code == 400
    assert "<html" not in body
    assert body.lstrip().startswith('<section id="view-log"')
    assert "The scorecard view log could not be filtered:" in body
    assert "<li>The start date must not be after the end date.</li>" in body
    # The unfiltered views are not listed in place of filtered ones.
    assert "data-view-log" not in body
    assert manager_member.display_name not in body


def test_view_log_fragment_rejects_unknown_viewer(client, org, admin_member, manager_member, member):
    client.force_login(manager_member.user)
    client.get(f"/o/acme/reps/{member.pk}/")
    client.force_login(admin_member.user)

    fragment = client.get("/o/acme/privacy/views/", {"viewer": "999999"}, HTTP_HX_REQUEST="true")

    body = fragment.content.decode()
    assert fragment.status_code == 400
    assert "Select a valid choice. 999999 is not one of the available choices." in body
    assert "data-view-log" not in body


def test_view_log_is_admin_only(client, org, manager_member, member):
    client.force_login(manager_member.user)
    assert client.get("/o/acme/privacy/views/").status_code == 404
    client.force_login(member.user)
    assert client.get("/o/acme/privacy/views/").status_code == 404


def test_metrics_register_page_and_csv(client, org, member):
    client.force_login(member.user)

    page = client.get("/o/acme/privacy/metrics/")
    export = client.get("/o/acme/privacy/metrics/", {"format": "csv"})

    assert page.status_code == 200
    assert "Scorecard view log" in page.content.decode()
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    lines = b"".join(export.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0] == "Key,Metric,Definition,Purpose,Who can see it"
    assert lines[1].startswith("won_revenue,Won revenue,")
    assert len(lines) == 14
    assert [line.split(",", 1)[0] for line in lines if line.startswith("coaching_")] == ["coaching_signals", "coaching_notes"]


def test_metrics_register_in_german(client, org, member):
    with scopes_disabled():
        member.user.language = "de"
        member.user.save(update_fields=["language"])
    client.force_login(member.user)

    response = client.get("/o/acme/privacy/metrics/")

    assert response.status_code == 200
    assert '<html lang="de">' in response.content.decode()


def test_other_org_cannot_read_view_log(client, org, admin_member, manager_member, member, other_org_admin):
    with scope(organization=org):
        scorecard_view_record(organization=org, viewer=manager_member, subject=member)
    client.force_login(other_org_admin.user)

    response = client.get("/o/globex/privacy/views/")

    assert response.status_code == 200
    assert member.display_name not in response.content.decode()


def test_small_team_hidden_on_team_leaderboard(client, org, admin_member, member, team):
    with scopes_disabled():
        org.minimum_group_size = 5
        org.save(update_fields=["minimum_group_size"])
        rep_create(org, "Solo")
    client.force_login(admin_member.user)

    body = client.get("/o/acme/leaderboard/", {"level": "team", "ranking": "absolute"}).content.decode()

    assert "Hidden teams" in body
    assert "Teams with fewer than 5 members are not shown with figures" in body
