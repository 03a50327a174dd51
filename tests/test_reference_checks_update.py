"""UPDATE side of the statement-level reference checks: only rows whose references changed are checked and locked.

PostgreSQL only, like tests/test_reference_checks.py.
"""

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from pipelines.models import Deal
from tests.attainment_data import stages_create
from tests.factories import DealFactory, MembershipFactory

# The skip, the dates and the fixtures of the INSERT side's tests apply here unchanged.
from tests.test_reference_checks import CREATED, deal, no_scopes, pytestmark  # noqa: F401


def _stage_lock_free(stage_id: int) -> bool:
    """Return whether another connection can lock the stage row FOR UPDATE at once (no KEY SHARE lock is held on it)."""
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        autocommit=True,
    ) as other:
        try:
            other.execute("SELECT id FROM pipelines_stage WHERE id = %s FOR UPDATE NOWAIT", [stage_id])
        except psycopg.errors.LockNotAvailable:
            return False
    return True


def test_update_unchanged_references_unchecked(deal, other_org):
    """A row whose references did not change is not checked again, as with a foreign key."""
    foreign_stage = stages_create(other_org)["open"]
    with connection.cursor() as cursor:
        # Written past the check on purpose, to see whether an UPDATE looks at the stage again.
        cursor.execute("ALTER TABLE pipelines_deal DISABLE TRIGGER pipelines_deal_references_update")
        cursor.execute("UPDATE pipelines_deal SET stage_id = %s WHERE id = %s", [foreign_stage.pk, deal.pk])
        cursor.execute("ALTER TABLE pipelines_deal ENABLE TRIGGER pipelines_deal_references_update")

    Deal.all_objects.filter(pk=deal.pk).update(name="Renamed", amount=120)

    deal.refresh_from_db()
    assert deal.name == "Renamed"
    assert deal.stage_id == foreign_stage.pk


def test_update_changed_reference_checked(deal, other_org):
    foreign_owner = MembershipFactory(organization=other_org)

    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Deal.all_objects.filter(pk=deal.pk).update(name="Moved", owner=foreign_owner)

    assert f"owner_id = {foreign_owner.pk} has no row in spm_membership of organization {deal.organization_id}" in str(
        caught.value
    )


def test_update_two_organizations_changed_pairs(deal, stages, other_org):
    """One UPDATE over deals of two organizations checks each changed row in its own organization."""
    foreign_stages = stages_create(other_org)
    foreign_deal = DealFactory(
        organization=other_org,
        owner=MembershipFactory(organization=other_org),
        stage=foreign_stages["open"],
        created_at=CREATED,
    )

    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Deal.all_objects.filter(pk__in=[deal.pk, foreign_deal.pk]).update(stage=stages["won"])

    assert f"stage_id = {stages['won'].pk} has no row in pipelines_stage of organization {other_org.pk}" in str(
        caught.value
    )
    foreign_deal.refresh_from_db()
    assert foreign_deal.stage_id == foreign_stages["open"].pk


@pytest.mark.django_db(transaction=True)
def test_update_unchanged_reference_not_locked(deal, stages):
    """Saving a deal's amount takes no KEY SHARE lock on its stage, so the stage can be locked elsewhere meanwhile."""
    with transaction.atomic():
        Deal.all_objects.filter(pk=deal.pk).update(amount=250)
        unchanged_free = _stage_lock_free(deal.stage_id)

        Deal.all_objects.filter(pk=deal.pk).update(stage=stages["won"])
        changed_free = _stage_lock_free(stages["won"].pk)

    assert unchanged_free is True
    assert changed_free is False
