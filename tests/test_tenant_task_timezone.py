"""spm.celery.TenantTask runs the task body in the organization's time zone, as a request does."""

import datetime as dt

from django.utils import timezone
from django_scopes import scopes_disabled

from spm.celery import TenantTask
from spm.celery import app as celery_app
from tests.factories import OrganizationFactory


@celery_app.task(base=TenantTask, bind=True, name="tests.organization_local_date")
def organization_local_date(self, *, organization_id: int) -> list[str]:
    """Return the name of the time zone active in the task body and its local date (ISO 8601)."""
    return [timezone.get_current_timezone_name(), timezone.localdate().isoformat()]


def test_tenant_task_uses_organization_date(db, monkeypatch):
    with scopes_disabled():
        auckland = OrganizationFactory(name="Kiwi", slug="kiwi", time_zone="Pacific/Auckland")
    # 12:00 UTC on 30 November is 13:00 in Berlin (the server's TIME_ZONE) and 01:00 on 1 December in Auckland.
    monkeypatch.setattr(timezone, "now", lambda: dt.datetime(2024, 11, 30, 12, tzinfo=dt.timezone.utc))

    seen = organization_local_date.delay(organization_id=auckland.pk).get()

    assert seen == ["Pacific/Auckland", "2024-12-01"]
    assert timezone.get_current_timezone_name() == "Europe/Berlin"
    assert timezone.localdate().isoformat() == "2024-11-30"
