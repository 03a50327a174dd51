"""Two admins who save the same empty quota cell, or move the same member, at once (PostgreSQL row locks).

The first write holds its transaction open until the second one waits for a lock. The second
then reads the first one's committed rows and updates them. Without the lock it would insert a
duplicate, which the unique constraints reject with an IntegrityError.
"""

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django_scopes import scope, scopes_disabled

from goals import services
from goals.models import Assignment, Quota
from spm.models import Membership
from tests.factories import TeamFactory

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite ignores SELECT ... FOR UPDATE"),
    # Each write runs in its own thread, connection and transaction.
    pytest.mark.django_db(transaction=True),
]

# Generous, so that a loaded machine does not fail the test. A passing run waits well under a second.
WAIT_TIMEOUT_SECONDS = 30
POLL_INTERVAL_SECONDS = 0.01
MOVE_DAY = dt.date(2025, 4, 1)
TODAY = dt.date(2025, 6, 1)


def run_write(org, write, *, outcome, hold_open=None, written=None):
    """Run `write()` in one transaction; record its result or the IntegrityError in `outcome`."""
    try:
        with scope(organization=org), transaction.atomic():
            result = write()
            if written is not None:
                written.set()
            if hold_open is not None:
                hold_open.wait(WAIT_TIMEOUT_SECONDS)
        outcome.append(result)
    except IntegrityError:
        outcome.append("IntegrityError")
    finally:
        connection.close()


def lock_waits() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0]


def race(org, first_write, second_write) -> tuple[list, list]:
    """Start `first_write`, start `second_write` once the first has written, and let the first commit once the second waits."""
    first_outcome, second_outcome = [], []
    hold_open, written = threading.Event(), threading.Event()
    first_thread = threading.Thread(
        target=run_write, args=(org, first_write), kwargs={"outcome": first_outcome, "hold_open": hold_open, "written": written}
    )
    first_thread.start()
    assert written.wait(WAIT_TIMEOUT_SECONDS)
    second_thread = threading.Thread(target=run_write, args=(org, second_write), kwargs={"outcome": second_outcome})
    second_thread.start()
    deadline = time.monotonic() + WAIT_TIMEOUT_SECONDS
    while lock_waits() == 0 and second_thread.is_alive() and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_SECONDS)
    hold_open.set()
    first_thread.join(WAIT_TIMEOUT_SECONDS)
    second_thread.join(WAIT_TIMEOUT_SECONDS)
    return first_outcome, second_outcome


def test_same_empty_quota_cell_saved_twice(org, member):
    def save(target):
        def write():
            _quota, outcome = services.quota_update(
                organization=org,
                actor=None,
                level="rep",
                subject_id=member.pk,
                period_kind="quarter",
                period_start=dt.date(2025, 1, 1),
                metric="won_revenue",
                target=Decimal(target),
            )
            return outcome

        return write

    first_outcome, second_outcome = race(org, save(1000), save(2000))

    assert first_outcome == ["created"]
    assert second_outcome == ["updated"]
    with scopes_disabled():
        assert list(Quota.objects.filter(organization=org).values_list("target", flat=True)) == [Decimal("2000.00")]


def test_same_member_moved_twice(org, team, member):
    with scopes_disabled():
        south = TeamFactory(organization=org, name="South")
        east = TeamFactory(organization=org, name="East")

    def move(new_team):
        def write():
            membership = Membership.objects.select_related("organization").get(pk=member.pk)
            assignment = services.assignment_change(
                membership=membership, actor=None, team=new_team, territory=None, valid_from=MOVE_DAY, today=TODAY
            )
            return assignment.team.name

        return write

    first_outcome, second_outcome = race(org, move(south), move(east))

    assert first_outcome == ["South"]
    assert second_outcome == ["East"]
    with scopes_disabled():
        history = list(
            Assignment.objects.filter(membership=member)
            .order_by("valid_from")
            .values_list("team__name", "valid_from", "valid_to")
        )
        assert history == [("North", dt.date(1900, 1, 1), MOVE_DAY), ("East", MOVE_DAY, None)]
        assert Membership.objects.get(pk=member.pk).team_id == east.pk
