"""Statement-level reference checks of deals and stage changes (PostgreSQL triggers, pipelines migration 0008).

Deals and stage changes have no per-row foreign key constraints on their organization,
owner, account, pipeline, stage, product and territory. The triggers must reject what a
foreign key rejects (a missing row, deleting a row still referred to) and also a reference
into another organization, which a foreign key allows.
"""

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django_scopes import scopes_disabled

from pipelines.models import Account, Activity, Deal, DealStageChange
from tests.attainment_data import stages_create
from tests.factories import (
    AccountFactory,
    DealFactory,
    DealStageChangeFactory,
    MembershipFactory,
)

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the reference check triggers exist on PostgreSQL only"
)

CREATED = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def no_scopes():
    with scopes_disabled():
        yield


@pytest.fixture
def deal(org, member, stages):
    return DealFactory(organization=org, owner=member, stage=stages["open"], created_at=CREATED)


@pytest.fixture
def foreign_stages(other_org):
    return stages_create(other_org)


def _violation(statement) -> str:
    """Run `statement` in a savepoint and return the IntegrityError's message; fail when none is raised."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        statement()
    return str(caught.value)


def test_deal_with_other_organizations_stage(deal, foreign_stages):
    deal.stage = foreign_stages["open"]

    message = _violation(lambda: deal.save(update_fields=["stage"]))

    assert f"stage_id = {foreign_stages['open'].pk} has no row in pipelines_stage" in message


def test_deal_with_missing_owner(org, member, stages):
    missing_id = member.pk + 10_000

    message = _violation(
        lambda: Deal.all_objects.bulk_create(
            [
                Deal(
                    organization=org,
                    source="test",
                    external_id="X1",
                    owner_id=missing_id,
                    pipeline=stages["open"].pipeline,
                    stage=stages["open"],
                    currency="EUR",
                    created_at=CREATED,
                )
            ]
        )
    )

    assert f"owner_id = {missing_id} has no row in spm_membership" in message


def test_deal_with_other_organizations_account(deal, other_org):
    foreign_account = AccountFactory(organization=other_org)

    message = _violation(lambda: Deal.all_objects.filter(pk=deal.pk).update(account=foreign_account))

    assert f"account_id = {foreign_account.pk} has no row in pipelines_account" in message


def test_stage_change_with_other_organizations_stage(deal, foreign_stages):
    message = _violation(
        lambda: DealStageChange.all_objects.create(
            organization=deal.organization,
            deal=deal,
            from_stage=deal.stage,
            to_stage=foreign_stages["won"],
            changed_at=CREATED,
        )
    )

    assert f"to_stage_id = {foreign_stages['won'].pk} has no row in pipelines_stage" in message


def _deal(organization, owner, stage, external_id) -> Deal:
    return Deal(
        organization=organization,
        source="test",
        external_id=external_id,
        owner=owner,
        pipeline=stage.pipeline,
        stage=stage,
        currency="EUR",
        created_at=CREATED,
    )


def test_statement_over_two_organizations(org, member, stages, other_org, foreign_stages):
    """A statement with rows of several organizations checks each row's references in its own organization."""
    foreign_owner = MembershipFactory(organization=other_org)
    Deal.all_objects.bulk_create(
        [_deal(org, member, stages["open"], "M1"), _deal(other_org, foreign_owner, foreign_stages["open"], "M2")]
    )

    crossing = _deal(other_org, foreign_owner, stages["open"], "M4")
    crossing.pipeline = foreign_stages["open"].pipeline

    message = _violation(lambda: Deal.all_objects.bulk_create([_deal(org, member, stages["open"], "M3"), crossing]))

    assert f"stage_id = {stages['open'].pk} has no row in pipelines_stage of organization {other_org.pk}" in message
    assert Deal.all_objects.filter(external_id__in=["M1", "M2"]).count() == 2


def test_stage_change_of_other_organizations_deal(deal, other_org, foreign_stages):
    message = _violation(
        lambda: DealStageChange.all_objects.create(
            organization=other_org, deal=deal, to_stage=foreign_stages["open"], changed_at=CREATED
        )
    )

    assert f"deal_id = {deal.pk} has no row in pipelines_deal of organization {other_org.pk}" in message


@pytest.mark.parametrize(
    ("table", "deal_field", "has_history", "expected"),
    [
        pytest.param(
            "pipelines_deal", "pk", True, "rows of pipelines_dealstagechange still refer to it through deal_id",
            id="deal-with-history",
        ),
        pytest.param(
            "pipelines_stage", "stage_id", False, "rows of pipelines_deal still refer to it through stage_id",
            id="stage-of-deal",
        ),
        pytest.param(
            "spm_membership", "owner_id", False, "rows of pipelines_deal still refer to it through owner_id",
            id="owner-of-deal",
        ),
    ],
)
def test_raw_delete_of_referenced_row(deal, table, deal_field, has_history, expected):
    """A DELETE that bypasses Django's collector is rejected while a row still refers to the deleted one."""
    if has_history:
        DealStageChangeFactory(deal=deal)
    row_id = getattr(deal, deal_field)

    def delete():
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE id = %s", [row_id])

    message = _violation(delete)

    assert expected in message


def test_valid_rows_pass(deal, stages):
    change = DealStageChangeFactory(deal=deal, from_stage=stages["open"], to_stage=stages["won"])
    account = AccountFactory(organization=deal.organization)
    Deal.all_objects.filter(pk=deal.pk).update(account=account, stage=stages["won"])

    deal.refresh_from_db()
    assert deal.account_id == account.pk
    assert DealStageChange.all_objects.filter(pk=change.pk).exists()


def test_account_delete_sets_deal_account_null(deal):
    """Django's SET_NULL updates the deals first, so the delete check passes."""
    account = AccountFactory(organization=deal.organization)
    Deal.all_objects.filter(pk=deal.pk).update(account=account)
    account.delete()

    deal.refresh_from_db()
    assert deal.account_id is None
    assert not Account.objects.filter(pk=account.pk).exists()


def test_unreferenced_owner_delete_passes(org):
    idle = MembershipFactory(organization=org)
    idle.delete()

    assert not type(idle).objects.filter(pk=idle.pk).exists()


def test_activity_with_other_organizations_deal(org, member, other_org, foreign_stages):
    """pipelines_deal is partitioned, so an activity's deal is checked by a trigger instead of a foreign key."""
    foreign_member = MembershipFactory(organization=other_org)
    foreign_deal = DealFactory(
        organization=other_org, owner=foreign_member, stage=foreign_stages["open"], created_at=CREATED
    )
    activity = Activity(
        organization=org, source="test", external_id="A1", kind="call", owner=member, occurred_at=CREATED,
        deal_id=foreign_deal.pk,
    )  # fmt: skip

    message = _violation(activity.save)

    assert f"deal_id = {foreign_deal.pk} has no row in pipelines_deal of organization {org.pk}" in message


def test_deal_delete_with_activity(org, member, deal):
    Activity.objects.create(
        organization=org, source="test", external_id="A1", kind="call", owner=member, occurred_at=CREATED, deal=deal
    )

    def raw_delete():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM pipelines_deal WHERE organization_id = %s AND id = %s", [org.pk, deal.pk])

    message = _violation(raw_delete)

    assert "rows of pipelines_activity still refer to it through deal_id" in message
