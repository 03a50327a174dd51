"""Weekly digest: content for managers and reps in the recipient's language, schedule, and no double send.

Acme (Europe/Berlin, default language German), team North led by the manager, reps
"rep" (English), "rep2" and "rep3". The send time is Monday 2017-07-10 07:30 local
(05:30 UTC), so the quarter is 2017-Q3 and the forecast period too.

Deals, all created 2017-06-20 and closed 2017-07-05 in Q3, 1,000 each unless noted:
- rep: 1 won (2,500), 3 lost → win rate 1/4 = 25 %
- rep2: 3 won, 1 lost → 75 %
- rep3: 2 won, 2 lost → 50 %
Team median of the win rate: 50 %. rep is 25 % below it, a concern with 4 closed deals.

rep's quota for 2017-Q3: 10,000 won revenue. Credited 2,500, so attainment 25.0 %;
elapsed share on 2017-07-10 is 10/92, so pacing 2,500 ÷ (10,000 × 10/92) = 230.0 %.

rep's forecast for 2017-Q3: 2017-07-03 commit 8,000 / best case 12,000, then
2017-07-07 commit 9,500 / best case 13,000: commit change +1,500.
rep's open action item: "Call back Initech", due 2017-07-07 (overdue); a done one is left out.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django_scopes import scope, scopes_disabled

from coaching.digest import digest_send_week, is_send_time
from coaching.models import ActionItem, OneOnOne
from coaching.skills.models import DigestSend
from coaching.tasks import weekly_digest_schedule, weekly_digest_send
from goals.models import ForecastSubmission, Quota, QuotaLevel, QuotaMetric
from spm.models import Role
from tests.analytics_data import deal_with_history, sales_stages, utc
from tests.factories import MembershipFactory, UserFactory

SEND_AT = dt.datetime(2017, 7, 10, 5, 30, tzinfo=dt.timezone.utc)


@pytest.fixture
def third_rep(org, team, manager_member):
    with scopes_disabled():
        return MembershipFactory(
            organization=org, role=Role.REP, team=team, manager=manager_member, user=UserFactory(email="rep3@acme.example")
        )


@pytest.fixture
def week(org, admin_member, manager_member, member, other_rep, third_rep):
    stages = sales_stages(org)
    with scopes_disabled():
        member.user.language = "en"
        member.user.save(update_fields=["language"])

    def closed(owner, outcome, amount="1000.00"):
        deal_with_history(owner, stages, [("Lead", utc(6, 20)), (outcome, utc(7, 5))], amount=amount)

    closed(member, "Won", "2500.00")
    for _index in range(3):
        closed(member, "Lost")
        closed(other_rep, "Won")
    closed(other_rep, "Lost")
    for outcome in ("Won", "Won", "Lost", "Lost"):
        closed(third_rep, outcome)

    with scope(organization=org):
        Quota.objects.create(
            organization=org,
            level=QuotaLevel.REP,
            membership=member,
            period_kind="quarter",
            period_start=dt.date(2017, 7, 1),
            metric=QuotaMetric.WON_REVENUE,
            target=Decimal("10000"),
        )
        for day, commit, best in ((3, "8000", "12000"), (7, "9500", "13000")):
            ForecastSubmission.objects.create(
                organization=org,
                subject=member,
                submitted_by=member,
                period_kind="quarter",
                period_start=dt.date(2017, 7, 1),
                commit_amount=Decimal(commit),
                best_case_amount=Decimal(best),
                submitted_at=utc(7, day),
            )
        meeting = OneOnOne.objects.create(
            organization=org, rep=member, manager=manager_member, scheduled_at=utc(7, 3), period_label="2017-Q3"
        )
        ActionItem.objects.create(
            organization=org, one_on_one=meeting, owner=member, title="Call back Initech", due_on=dt.date(2017, 7, 7)
        )
        ActionItem.objects.create(
            organization=org, one_on_one=meeting, owner=member, title="Old item", done_at=utc(7, 4)
        )


def send(org):
    with scope(organization=org):
        return digest_send_week(organization=org, now=SEND_AT)


def message_to(address):
    matches = [message for message in mail.outbox if message.to == [address]]
    assert len(matches) == 1, f"expected one e-mail to {address}, got {len(matches)}"
    return matches[0]


def html_of(message):
    return message.alternatives[0][0]


def test_digest_goes_to_managers_and_reps(org, week):
    sent = send(org)

    assert sent == 4
    assert sorted(address for message in mail.outbox for address in message.to) == [
        "manager@acme.example",
        "rep2@acme.example",
        "rep3@acme.example",
        "rep@acme.example",
    ]


def test_rep_digest_in_english(org, week):
    send(org)

    message = message_to("rep@acme.example")
    assert message.subject == "SPM weekly digest for the week of 07/10/2017"
    assert "Your attainment in Q3 FY 2017" in message.body
    assert "- Won revenue: €2,500.00" in message.body
    assert "- Quota: €10,000.00" in message.body
    assert "- Attainment: 25.0%" in message.body
    assert "- Pacing: 230.0%" in message.body
    assert "- Call back Initech (overdue since 07/07/2017)" in message.body
    assert "Old item" not in message.body
    assert "Call back Initech" in html_of(message)
    assert "25.0%" in html_of(message)


def test_manager_digest_in_german(org, week, member, other_rep):
    send(org)

    message = message_to("manager@acme.example")
    body = message.body
    rep_section = body.split(f"== {member.display_name} ==")[1].split(f"== {other_rep.display_name} ==")[0]
    assert "25,0\xa0% (" in rep_section
    assert "50,0\xa0%, 4 " in rep_section
    assert "9.500,00\xa0€" in rep_section
    assert "8.000,00\xa0€" in rep_section
    assert "+1.500,00\xa0€" in rep_section
    assert "07.07.2017" in rep_section
    assert "03.07.2017" in rep_section
    assert "10.07.2017" in message.subject
    assert "So stehen Ihre Vertriebsmitarbeitenden in Q3 GJ 2017 im Vergleich" in body
    assert "9.500,00\xa0€" in html_of(message)


def test_manager_digest_lists_each_rep(org, week, member, other_rep, third_rep):
    send(org)

    body = message_to("manager@acme.example").body
    for rep in (member, other_rep, third_rep):
        assert f"== {rep.display_name} ==" in body


def test_rep_without_quota_gets_reason(org, week):
    send(org)

    body = message_to("rep2@acme.example").body
    assert "Gewonnener Umsatz: 3.000,00\xa0€" in body
    assert "Q3 GJ 2017" in body
    assert "2017-Q3" not in body
    assert "- Zielerreichung:" not in body


def test_second_run_sends_nothing(org, week):
    first = send(org)
    second = send(org)

    assert first == 4
    assert second == 0
    assert len(mail.outbox) == 4
    with scope(organization=org):
        assert DigestSend.objects.filter(week_start_on=dt.date(2017, 7, 10)).count() == 4


def test_failed_send_is_retried(org, week, monkeypatch):
    from django.core.mail.backends.locmem import EmailBackend

    original = EmailBackend.send_messages

    def fail_for_manager(self, messages):
        if messages[0].to == ["manager@acme.example"]:
            raise OSError("SMTP server unavailable")
        return original(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", fail_for_manager)
    assert send(org) == 3

    monkeypatch.setattr(EmailBackend, "send_messages", original)
    assert send(org) == 1
    assert len(mail.outbox) == 4


def test_next_week_sends_again(org, week):
    send(org)
    with scope(organization=org):
        digest_send_week(organization=org, now=SEND_AT + dt.timedelta(days=7))

    assert len(mail.outbox) == 8


def test_send_window_is_monday_morning_local(org):
    monday_0630_local = dt.datetime(2017, 7, 10, 4, 30, tzinfo=dt.timezone.utc)
    monday_0700_local = dt.datetime(2017, 7, 10, 5, 0, tzinfo=dt.timezone.utc)
    sunday_late_utc = dt.datetime(2017, 7, 9, 23, 0, tzinfo=dt.timezone.utc)

    assert is_send_time(org, monday_0630_local) is False
    assert is_send_time(org, monday_0700_local) is True
    # 01:00 on Monday in Berlin is too early even though it is Monday there.
    assert is_send_time(org, sunday_late_utc) is False


def test_schedule_queues_only_due_organizations(org, other_org, week):
    with scopes_disabled():
        other_org.time_zone = "America/New_York"
        other_org.save(update_fields=["time_zone"])

    queued = weekly_digest_schedule(now=SEND_AT.isoformat())

    assert queued == 1
    assert len(mail.outbox) == 4


def test_schedule_twice_sends_once(org, week):
    weekly_digest_schedule(now=SEND_AT.isoformat())
    weekly_digest_schedule(now=(SEND_AT + dt.timedelta(hours=1)).isoformat())

    assert len(mail.outbox) == 4


def test_task_sends_for_one_organization(org, week):
    sent = weekly_digest_send.delay(organization_id=org.pk, now=SEND_AT.isoformat()).get()

    assert sent == 4


def test_manager_without_reps_gets_nothing(org, week):
    with scopes_disabled():
        MembershipFactory(organization=org, role=Role.MANAGER, user=UserFactory(email="lonely@acme.example"))

    send(org)

    assert not [message for message in mail.outbox if message.to == ["lonely@acme.example"]]


@pytest.mark.worker
def test_worker_sends_digest_once(celery_worker, org, week):
    first = weekly_digest_send.delay(organization_id=org.pk, now=SEND_AT.isoformat()).get(timeout=120)
    second = weekly_digest_send.delay(organization_id=org.pk, now=SEND_AT.isoformat()).get(timeout=120)

    assert first == 4
    assert second == 0
    with scope(organization=org):
        assert DigestSend.objects.count() == 4
