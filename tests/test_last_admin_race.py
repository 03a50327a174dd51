"""Two admins who demote each other at the same time: one change wins, the other fails (PostgreSQL row locks)."""

import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django_scopes import scope, scopes_disabled

from goals import services
from spm.models import Membership, Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite ignores SELECT ... FOR UPDATE"),
    # Each demotion runs in its own thread, connection and transaction.
    pytest.mark.django_db(transaction=True),
]

# Generous, so that a loaded machine does not fail the test. A passing run waits well under a second.
WAIT_TIMEOUT_SECONDS = 30
POLL_INTERVAL_SECONDS = 0.01


def demote(org, membership_id, *, outcome, hold_open=None, updated=None):
    """Demote the member to rep in one transaction; record "done" or the ValidationError code in `outcome`."""
    try:
        with scope(organization=org), transaction.atomic():
            membership = Membership.objects.select_related("user", "organization").get(pk=membership_id)
            services.membership_update(membership=membership, actor=None, role=Role.REP, active_from=None, active_to=None)
            if updated is not None:
                updated.set()
            if hold_open is not None:
                hold_open.wait(WAIT_TIMEOUT_SECONDS)
        outcome.append("done")
    except ValidationError as error:
        outcome.append(error.code)
    finally:
        connection.close()


def lock_waits() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0]


def test_mutual_demotion_keeps_one_admin(org):
    with scopes_disabled():
        first = MembershipFactory(organization=org, role=Role.ADMIN, user=UserFactory(email="a1@acme.example"))
        second = MembershipFactory(organization=org, role=Role.ADMIN, user=UserFactory(email="a2@acme.example"))
    first_outcome, second_outcome = [], []
    hold_open, updated = threading.Event(), threading.Event()

    first_thread = threading.Thread(
        target=demote, args=(org, first.pk), kwargs={"outcome": first_outcome, "hold_open": hold_open, "updated": updated}
    )
    first_thread.start()
    assert updated.wait(WAIT_TIMEOUT_SECONDS)
    second_thread = threading.Thread(target=demote, args=(org, second.pk), kwargs={"outcome": second_outcome})
    second_thread.start()
    # The second demotion must wait for the first one's row locks before it counts the admins.
    deadline = time.monotonic() + WAIT_TIMEOUT_SECONDS
    while lock_waits() == 0 and second_thread.is_alive() and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_SECONDS)
    hold_open.set()
    first_thread.join(WAIT_TIMEOUT_SECONDS)
    second_thread.join(WAIT_TIMEOUT_SECONDS)

    assert first_outcome == ["done"]
    assert second_outcome == ["last_admin"]
    with scopes_disabled():
        roles = dict(Membership.objects.filter(organization=org).values_list("pk", "role"))
    assert roles == {first.pk: Role.REP, second.pk: Role.ADMIN}
