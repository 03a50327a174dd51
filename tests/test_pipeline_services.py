"""Deal stage moves and the status and close time derived from the stage history."""

import datetime as dt
from unittest import mock

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from django.core.exceptions import ValidationError
from django.utils import translation
from django_scopes import scope, scopes_disabled

from pipelines.models import Deal, DealStageChange, StageKind
from pipelines.services import deal_close_state_refresh, deal_move_stage
from spm.models import AuditLog
from tests.factories import DealFactory, MembershipFactory, PipelineFactory, StageFactory


def at(month: int, day: int) -> dt.datetime:
    return dt.datetime(2017, month, day, 12, 0, tzinfo=dt.timezone.utc)


class Stages:
    """The four stages of a Maven-like pipeline, by name."""

    def __init__(self, organization):
        self.pipeline = PipelineFactory(organization=organization)
        self.prospecting = StageFactory(pipeline=self.pipeline, name="Prospecting", order=1, kind=StageKind.OPEN)
        self.engaging = StageFactory(pipeline=self.pipeline, name="Engaging", order=2, kind=StageKind.OPEN)
        self.won = StageFactory(pipeline=self.pipeline, name="Won", order=3, kind=StageKind.WON, probability=100)
        self.lost = StageFactory(pipeline=self.pipeline, name="Lost", order=4, kind=StageKind.LOST, probability=0)


@pytest.fixture
def stages(org):
    with scopes_disabled():
        return Stages(org)


@pytest.fixture
def engaging_deal(member, stages):
    """An open deal created on 2017-01-10 in Engaging, with that first move recorded."""
    with scopes_disabled():
        deal = DealFactory(owner=member, pipeline=stages.pipeline, stage=stages.engaging, created_at=at(1, 10))
        DealStageChange.objects.create(
            organization=deal.organization, deal=deal, to_stage=stages.engaging, changed_at=at(1, 10)
        )
    return deal


def move(deal, stage, when):
    with scope(organization=deal.organization):
        return deal_move_stage(deal=deal, to_stage=stage, changed_at=when)


def test_move_to_won_closes_deal(engaging_deal, stages):
    move(engaging_deal, stages.won, at(3, 1))

    assert engaging_deal.stage_id == stages.won.pk
    assert engaging_deal.status == "won"
    assert engaging_deal.closed_at == at(3, 1)


def test_reopened_deal_is_open(engaging_deal, stages):
    move(engaging_deal, stages.won, at(3, 1))

    move(engaging_deal, stages.engaging, at(4, 1))

    assert engaging_deal.status == "open"
    assert engaging_deal.closed_at is None
    assert engaging_deal.stage_id == stages.engaging.pk


def test_reclosed_deal_counts_latest_close(engaging_deal, stages):
    move(engaging_deal, stages.won, at(3, 1))
    move(engaging_deal, stages.engaging, at(4, 1))

    move(engaging_deal, stages.lost, at(5, 15))

    assert engaging_deal.status == "lost"
    assert engaging_deal.closed_at == at(5, 15)


def test_moving_backwards_keeps_history(engaging_deal, stages):
    change = move(engaging_deal, stages.prospecting, at(2, 1))

    assert engaging_deal.stage_id == stages.prospecting.pk
    assert engaging_deal.status == "open"
    assert engaging_deal.closed_at is None
    assert change.from_stage_id == stages.engaging.pk
    with scope(organization=engaging_deal.organization):
        moves = list(engaging_deal.stage_changes.values_list("from_stage_id", "to_stage_id", "is_implied"))
    assert moves == [(None, stages.engaging.pk, False), (stages.engaging.pk, stages.prospecting.pk, False)]


def test_move_to_current_stage_is_noop(engaging_deal, stages):
    result = move(engaging_deal, stages.engaging, at(2, 1))

    assert result is None
    with scope(organization=engaging_deal.organization):
        assert engaging_deal.stage_changes.count() == 1
        assert AuditLog.objects.count() == 0


def test_move_before_latest_change_rejected(engaging_deal, stages):
    move(engaging_deal, stages.won, at(3, 1))

    with pytest.raises(ValidationError):
        move(engaging_deal, stages.lost, at(2, 1))

    assert engaging_deal.status == "won"


EARLIER_MOVE = "A stage change cannot be earlier than the deal's latest stage change (%(latest)s)."


@pytest.fixture
def german_catalog(settings, tmp_path):
    """A German catalog for the earlier-move message, so the test does not depend on the project's catalog."""
    catalog = Catalog(locale="de")
    catalog.add(EARLIER_MOVE, "Ein Phasenwechsel darf nicht vor dem letzten Phasenwechsel des Deals liegen (%(latest)s).")
    folder = tmp_path / "locale" / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with open(folder / "django.mo", "wb") as handle:
        write_mo(handle, catalog)
    settings.LOCALE_PATHS = [tmp_path / "locale"]


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("en", "A stage change cannot be earlier than the deal's latest stage change (03/01/2017 1 p.m.)."),
        ("de", "Ein Phasenwechsel darf nicht vor dem letzten Phasenwechsel des Deals liegen (01.03.2017 13:00)."),
    ],
)
def test_earlier_move_message_localized(engaging_deal, stages, german_catalog, language, message):
    """The latest move, 2017-03-01 12:00 UTC, is shown in the reader's format and the organization's time zone (Berlin, UTC+1)."""
    move(engaging_deal, stages.won, at(3, 1))

    with translation.override(language), pytest.raises(ValidationError) as raised:
        move(engaging_deal, stages.lost, at(2, 1))

    assert raised.value.messages == [message]


def test_move_to_other_pipeline_rejected(engaging_deal, org):
    with scopes_disabled():
        foreign_stage = StageFactory(pipeline=PipelineFactory(organization=org, name="Renewals"), name="Won")

    with pytest.raises(ValidationError):
        move(engaging_deal, foreign_stage, at(3, 1))


def test_naive_time_rejected(engaging_deal, stages):
    with pytest.raises(ValidationError):
        move(engaging_deal, stages.won, dt.datetime(2017, 3, 1, 12, 0))


def test_move_writes_audit_log(engaging_deal, stages, admin_member):
    with scope(organization=engaging_deal.organization):
        deal_move_stage(deal=engaging_deal, to_stage=stages.won, changed_at=at(3, 1), actor=admin_member.user)
        entry = AuditLog.objects.get(action="deal.stage_moved")

    assert entry.actor_id == admin_member.user_id
    assert entry.object_id == str(engaging_deal.pk)
    assert entry.before == {"stage_id": stages.engaging.pk, "status": "open"}
    assert entry.after == {"stage_id": stages.won.pk, "status": "won"}


def test_move_sets_updated_at_for_api_clients(engaging_deal, stages):
    old = dt.datetime(2017, 1, 1, tzinfo=dt.timezone.utc)
    with scope(organization=engaging_deal.organization):
        Deal.objects.filter(pk=engaging_deal.pk).update(updated_at=old)

        deal_move_stage(deal=engaging_deal, to_stage=stages.won, changed_at=at(3, 1))

        assert Deal.objects.get(pk=engaging_deal.pk).updated_at > old


def test_move_schedules_recompute(engaging_deal, stages, django_capture_on_commit_callbacks):
    with mock.patch("dashboards.tasks.kpi_snapshot_recompute_deals") as task:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            move(engaging_deal, stages.won, at(3, 1))

    assert len(callbacks) == 1
    task.delay.assert_called_once_with(
        organization_id=engaging_deal.organization_id, deal_ids=[engaging_deal.pk], since=at(3, 1).isoformat()
    )


def test_refresh_derives_from_history(engaging_deal, stages):
    # History written directly, as an importer does, with the deal row still saying "open".
    with scopes_disabled():
        DealStageChange.objects.create(
            organization=engaging_deal.organization,
            deal=engaging_deal,
            from_stage=stages.engaging,
            to_stage=stages.won,
            changed_at=at(3, 1),
        )

    with scope(organization=engaging_deal.organization):
        refreshed = deal_close_state_refresh(organization=engaging_deal.organization, deal_ids=[engaging_deal.pk])

    engaging_deal.refresh_from_db()
    assert refreshed == 1
    assert engaging_deal.stage_id == stages.won.pk
    assert engaging_deal.status == "won"
    assert engaging_deal.closed_at == at(3, 1)


def test_refresh_breaks_time_ties_by_id(engaging_deal, stages):
    # Engaging and Won on the same instant: the later-written move is the current one.
    with scopes_disabled():
        DealStageChange.objects.create(
            organization=engaging_deal.organization,
            deal=engaging_deal,
            from_stage=stages.engaging,
            to_stage=stages.won,
            changed_at=at(1, 10),
        )

    with scope(organization=engaging_deal.organization):
        deal_close_state_refresh(organization=engaging_deal.organization, deal_ids=[engaging_deal.pk])

    engaging_deal.refresh_from_db()
    assert engaging_deal.status == "won"
    assert engaging_deal.closed_at == at(1, 10)


def test_refresh_without_history_uses_stage(member, stages):
    with scopes_disabled():
        deal = DealFactory(owner=member, pipeline=stages.pipeline, stage=stages.lost, status="open")

    with scope(organization=deal.organization):
        deal_close_state_refresh(organization=deal.organization, deal_ids=[deal.pk])

    deal.refresh_from_db()
    assert deal.stage_id == stages.lost.pk
    assert deal.status == "lost"
    assert deal.closed_at is None


def test_refresh_query_count(engaging_deal, django_assert_num_queries):
    with scope(organization=engaging_deal.organization):
        # Four UPDATE statements, and one read of the webhook subscriptions that want deal.won or deal.lost.
        with django_assert_num_queries(5):
            deal_close_state_refresh(organization=engaging_deal.organization, deal_ids=[engaging_deal.pk])


def test_refresh_all_leaves_other_tenant(engaging_deal, stages, other_org):
    with scopes_disabled():
        other_stages = Stages(other_org)
        other_owner = MembershipFactory(organization=other_org)
        # Inconsistent on purpose: a refresh of other_org would make it "won".
        other_deal = DealFactory(owner=other_owner, pipeline=other_stages.pipeline, stage=other_stages.won)
        DealStageChange.objects.create(
            organization=engaging_deal.organization,
            deal=engaging_deal,
            from_stage=stages.engaging,
            to_stage=stages.won,
            changed_at=at(3, 1),
        )

    with scope(organization=engaging_deal.organization):
        refreshed = deal_close_state_refresh(organization=engaging_deal.organization)

    other_deal.refresh_from_db()
    engaging_deal.refresh_from_db()
    assert refreshed == 1
    assert engaging_deal.status == "won"
    assert other_deal.status == "open"


def test_refresh_ignores_other_tenant_ids(engaging_deal, other_org):
    with scopes_disabled():
        other_stages = Stages(other_org)
        other_deal = DealFactory(
            owner=MembershipFactory(organization=other_org), pipeline=other_stages.pipeline, stage=other_stages.won
        )

    with scope(organization=engaging_deal.organization):
        refreshed = deal_close_state_refresh(organization=engaging_deal.organization, deal_ids=[other_deal.pk])

    assert refreshed == 0
    with scopes_disabled():
        assert Deal.objects.get(pk=other_deal.pk).status == "open"
