"""Win probability: training on a synthetic history, the held-out split, "too little history", wording, pages.

Synthetic history (organization Acme, Europe/Berlin), built by `history`:

- 250 closed deals, deal i created on 2017-01-02 + i days at 12:00 UTC and closed 20 days
  later, so every close date is distinct. Deal i's account sector is "software" when i is
  even and "retail" when odd; software deals are won and retail deals lost, except every
  deal with i % 10 == 3 or i % 10 == 6, whose outcome is flipped. The sector therefore
  separates the outcomes in 80 % of the deals, and nothing else does.
- The split position is ⌊250 × 0.8⌋ = 200: the cut date is deal 200's close date
  (2017-01-02 + 220 days = 2017-08-10); deals 0–199 train and 200–249 test.
- Snapshots: the weekly grid starts at local midnight of 2017-01-02 (2017-01-01 23:00 UTC).
  A deal created on weekday offset r = i % 7 from that start meets its first grid point
  (6 − r) days and 11 hours after creation, so a 20-day life contains 3 grid points for r ≥ 1
  and 2 for r = 0. Training: 200 × 3 − 29 deals with r = 0 (0, 7, …, 196) = 571 snapshots;
  test: 50 × 3 − 7 (203, 210, …, 245) = 143.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from pipelines.models import (
    Account,
    Deal,
    DealScore,
    DealStageChange,
    DealStatus,
    Stage,
    StageKind,
    WinModel,
    WinModelStatus,
)
from pipelines.scoring import win_probabilities
from pipelines.scoring.features import deal_facts_load
from pipelines.scoring.model import brier_score, calibration_bands
from pipelines.scoring.services import time_split, win_model_run_create, win_model_train
from pipelines.scoring.wording import factor_text
from pipelines.tasks import win_model_train_schedule
from tests.factories import PipelineFactory

START = dt.datetime(2017, 1, 2, 12, 0, tzinfo=dt.timezone.utc)
LIFE = dt.timedelta(days=20)
SCORED_AT = dt.datetime(2017, 9, 30, 12, 0, tzinfo=dt.timezone.utc)


def _is_won(index: int) -> bool:
    software = index % 2 == 0
    flipped = index % 10 in (3, 6)
    return software != flipped


@pytest.fixture
def stages(org):
    with scopes_disabled():
        pipeline = PipelineFactory(organization=org)
        return {
            "open": Stage.objects.create(organization=org, pipeline=pipeline, name="Qualify", order=1, probability=30),
            "won": Stage.objects.create(
                organization=org, pipeline=pipeline, name="Won", order=2, kind=StageKind.WON, probability=100
            ),
            "lost": Stage.objects.create(
                organization=org, pipeline=pipeline, name="Lost", order=3, kind=StageKind.LOST, probability=0
            ),
        }


@pytest.fixture
def accounts(org):
    with scopes_disabled():
        return {
            sector: Account.objects.create(organization=org, name=sector.title(), external_id=sector, sector=sector)
            for sector in ("software", "retail")
        }


def make_history(org, owner, stages, accounts, *, count: int, is_won=_is_won) -> list[Deal]:
    """Create `count` closed deals as described in the module docstring, with their stage history."""
    with scopes_disabled():
        deals = Deal.objects.bulk_create(
            [
                Deal(
                    organization=org,
                    source="test",
                    external_id=f"H{index:04d}",
                    name=f"History {index}",
                    owner=owner,
                    account=accounts["software" if index % 2 == 0 else "retail"],
                    pipeline=stages["open"].pipeline,
                    stage=stages["won"] if is_won(index) else stages["lost"],
                    amount=Decimal("1000.00"),
                    base_amount=Decimal("1000.00"),
                    currency="EUR",
                    status=DealStatus.WON if is_won(index) else DealStatus.LOST,
                    created_at=START + dt.timedelta(days=index),
                    closed_at=START + dt.timedelta(days=index) + LIFE,
                )
                for index in range(count)
            ]
        )
        changes = []
        for deal in deals:
            changes.append(DealStageChange(organization=org, deal=deal, to_stage=stages["open"], changed_at=deal.created_at))
            changes.append(
                DealStageChange(
                    organization=org, deal=deal, from_stage=stages["open"], to_stage=deal.stage, changed_at=deal.closed_at
                )
            )
        DealStageChange.objects.bulk_create(changes)
    return deals


def make_open_deal(org, owner, stages, account, *, name: str) -> Deal:
    with scopes_disabled():
        deal = Deal.objects.create(
            organization=org,
            source="test",
            external_id=name,
            name=name,
            owner=owner,
            account=account,
            pipeline=stages["open"].pipeline,
            stage=stages["open"],
            amount=Decimal("1000.00"),
            base_amount=Decimal("1000.00"),
            currency="EUR",
            created_at=SCORED_AT - dt.timedelta(days=10),
        )
        DealStageChange.objects.create(organization=org, deal=deal, to_stage=stages["open"], changed_at=deal.created_at)
    return deal


def train(org) -> WinModel:
    with scope(organization=org):
        run, created = win_model_run_create(organization=org, actor=None)
        assert created
        return win_model_train(run=run, as_of=SCORED_AT)


@pytest.fixture
def history(org, member, stages, accounts):
    return make_history(org, member, stages, accounts, count=250)


@pytest.fixture
def open_deals(org, member, stages, accounts):
    return {
        "software": make_open_deal(org, member, stages, accounts["software"], name="Open software"),
        "retail": make_open_deal(org, member, stages, accounts["retail"], name="Open retail"),
    }


# --- training ---------------------------------------------------------------------------------


def test_time_split_sizes(org, history):
    with scope(organization=org):
        split = time_split(deal_facts_load(Deal.objects.all()), time_zone=dt.timezone.utc)

    assert split.cut_on == dt.date(2017, 8, 10)
    assert len(split.train) == 200
    assert len(split.test) == 50
    assert max(deal.closed_at for deal in split.train) < min(deal.closed_at for deal in split.test)


def test_training_separates_known_feature(org, history, open_deals):
    run = train(org)

    assert run.status == WinModelStatus.SUCCEEDED
    assert run.cut_on == dt.date(2017, 8, 10)
    assert (run.n_train, run.n_test) == (200, 50)
    assert (run.n_train_rows, run.n_test_rows) == (571, 143)
    assert (run.closed_won_count, run.closed_lost_count) == (125, 125)
    assert run.auc > 0.75
    assert run.brier_score < 0.2
    assert sum(band["count"] for band in run.calibration) == 143
    assert run.scored_count == 2


def test_scores_favour_separating_sector(org, history, open_deals):
    train(org)

    with scope(organization=org):
        scores = {score.deal_id: score for score in DealScore.objects.all()}
    software, retail = scores[open_deals["software"].pk], scores[open_deals["retail"].pk]
    assert software.probability > Decimal("0.6")
    assert retail.probability < Decimal("0.4")
    assert software.scored_at == SCORED_AT
    assert software.factors[0]["factor"] == "sector"
    assert software.factors[0]["value"] == "software"
    assert software.factors[0]["effect"] > 0
    assert retail.factors[0]["factor"] == "sector"
    assert retail.factors[0]["effect"] < 0
    assert len(software.factors) <= 3


def test_win_probabilities_only_open_scored(org, other_org, history, open_deals):
    train(org)
    closed = history[0]

    with scope(organization=org):
        # A leftover score on a deal that closed since the last scoring must not count.
        DealScore.objects.create(
            organization=org, deal=closed, model=WinModel.objects.get(), probability=Decimal("0.5"), scored_at=SCORED_AT
        )
        result = win_probabilities(organization=org, deal_ids=[open_deals["software"].pk, closed.pk, 999999])

    assert set(result) == {open_deals["software"].pk}
    assert isinstance(result[open_deals["software"].pk], Decimal)
    assert Decimal("0") <= result[open_deals["software"].pk] <= Decimal("1")
    with scope(organization=other_org):
        assert win_probabilities(organization=other_org, deal_ids=[open_deals["software"].pk]) == {}


def test_too_few_closed_deals(org, member, stages, accounts, open_deals):
    make_history(org, member, stages, accounts, count=199)

    run = train(org)

    assert run.status == WinModelStatus.INSUFFICIENT
    # Deals 0–198: 100 even, 99 odd; 20 with i % 10 == 3 turn won and 20 with i % 10 == 6 turn lost.
    assert (run.closed_won_count, run.closed_lost_count) == (100, 99)
    assert run.scored_count == 0
    with scope(organization=org):
        assert DealScore.objects.count() == 0
        assert win_probabilities(organization=org, deal_ids=[open_deals["software"].pk]) == {}


def test_too_few_lost_deals(org, member, stages, accounts):
    # Only deals with i % 10 == 0 are lost: 25 of 250, below the minimum of 30 per outcome.
    make_history(org, member, stages, accounts, count=250, is_won=lambda index: index % 10 != 0)

    run = train(org)

    assert run.status == WinModelStatus.INSUFFICIENT
    assert (run.closed_won_count, run.closed_lost_count) == (225, 25)


def test_insufficient_run_removes_old_scores(org, member, stages, accounts, history, open_deals):
    train(org)
    with scopes_disabled():
        Deal.objects.filter(pk__in=[deal.pk for deal in history[20:]]).update(deleted_at=SCORED_AT)

    run = train(org)

    assert run.status == WinModelStatus.INSUFFICIENT
    with scope(organization=org):
        assert DealScore.objects.count() == 0


def test_schedule_trains_each_organization(org, other_org, history, open_deals, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        queued = win_model_train_schedule.delay().get()

    # Only Acme has closed deals; Globex has none and gets no run.
    assert queued == 1
    with scope(organization=org):
        run = WinModel.objects.get()
    assert run.status == WinModelStatus.SUCCEEDED
    assert run.scored_count == 2
    with scope(organization=other_org):
        assert WinModel.objects.count() == 0


def test_second_request_returns_busy_run(org, admin_member):
    with scope(organization=org):
        first, created = win_model_run_create(organization=org, actor=admin_member.user)
        second, created_again = win_model_run_create(organization=org, actor=admin_member.user)

    assert created
    assert not created_again
    assert second.pk == first.pk


# --- metrics on hand-made values ---------------------------------------------------------------


def test_calibration_band_counts():
    predicted = [0.05, 0.15, 0.12, 0.3, 0.95, 1.0]
    outcomes = [0, 1, 0, 0, 1, 1]

    bands = calibration_bands(predicted, outcomes)

    assert [band.count for band in bands] == [1, 2, 0, 1, 0, 0, 0, 0, 0, 2]
    assert bands[1].predicted_mean == pytest.approx(0.135)
    assert bands[1].observed_share == 0.5
    assert bands[3].observed_share == 0.0
    assert bands[9].predicted_mean == pytest.approx(0.975)
    assert bands[9].observed_share == 1.0
    assert bands[2].predicted_mean is None
    assert bands[2].observed_share is None


def test_brier_score_by_hand():
    # ((0.8 − 1)² + (0.4 − 0)²) / 2 = (0.04 + 0.16) / 2 = 0.1
    assert brier_score([0.8, 0.4], [1, 0]) == pytest.approx(0.1)


# --- wording -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factor", "expected"),
    [
        ({"factor": "stage_days", "value": 45, "effect": -0.4}, "Time in current stage 45 days (lowers the probability)"),
        ({"factor": "age_days", "value": 1, "effect": 0.2}, "Deal age 1 day (raises the probability)"),
        ({"factor": "activity_count", "value": 1234, "effect": 0.1}, "1,234 activities so far (raises the probability)"),
        ({"factor": "sector", "value": "software", "effect": 0.9}, "Account sector software (raises the probability)"),
        ({"factor": "sector", "value": None, "effect": -0.1}, "No account sector (lowers the probability)"),
        ({"factor": "stage", "value": "Proposal", "effect": 0.3}, "Stage Proposal (raises the probability)"),
        ({"factor": "product", "value": "GTX Pro", "effect": -0.2}, "Product GTX Pro (lowers the probability)"),
        (
            {"factor": "owner_win_rate", "value": {"won": 3, "closed": 8}, "effect": -0.5},
            "Owner's win rate so far 37.5% (8 closed deals) (lowers the probability)",
        ),
        (
            {"factor": "owner_win_rate", "value": {"won": 0, "closed": 0}, "effect": -0.1},
            "Owner without closed deals so far (lowers the probability)",
        ),
        (
            {"factor": "amount_band", "value": {"lower": "1096.00", "upper": "4821.00"}, "effect": 0.2},
            "Amount from €1,096.00 to below €4,821.00 (raises the probability)",
        ),
        (
            {"factor": "amount_band", "value": {"lower": None, "upper": "550.00"}, "effect": -0.2},
            "Amount below €550.00 (lowers the probability)",
        ),
        ({"factor": "amount_band", "value": None, "effect": -0.2}, "No amount (lowers the probability)"),
    ],
)
def test_factor_wording(factor, expected):
    assert factor_text(factor, currency="EUR") == expected


# --- pages -------------------------------------------------------------------------------------


def test_admin_page_shows_metrics(client, org, admin_member, history, open_deals):
    run = train(org)
    client.force_login(admin_member.user)

    response = client.get("/o/acme/settings/win-model/")

    assert response.status_code == 200
    page = response.context["page"]
    assert page.current.pk == run.pk
    assert page.calibration_chart is not None
    assert [band["count"] for band in page.calibration_rows] == [band["count"] for band in run.calibration]
    html = response.content.decode()
    assert f"{run.brier_score:.4f}" in html
    assert f"{run.auc:.4f}" in html
    assert 'data-plotly-figure="calibration-chart"' in html
    assert "data-insufficient" not in html


def test_admin_page_too_little_history(client, org, admin_member, member, stages, accounts):
    make_history(org, member, stages, accounts, count=40)
    train(org)
    client.force_login(admin_member.user)

    response = client.get("/o/acme/settings/win-model/")

    html = response.content.decode()
    assert "data-insufficient" in html
    assert "20 won and 20 lost deals are closed" in html
    assert "at least 200 closed deals, with at least 30 won and 30 lost" in html
    assert "calibration-chart" not in html


def test_admin_page_fragment_for_htmx(client, org, admin_member):
    client.force_login(admin_member.user)

    full = client.get("/o/acme/settings/win-model/")
    fragment = client.get("/o/acme/settings/win-model/", HTTP_HX_REQUEST="true")

    assert b"<html" in full.content
    assert b"<html" not in fragment.content
    assert b'id="win-model-status"' in fragment.content
    assert b"No model has been trained yet." in fragment.content
    assert "HX-Request" in fragment["Vary"]


def test_train_button_starts_run(client, org, admin_member, history, open_deals, django_capture_on_commit_callbacks):
    client.force_login(admin_member.user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/o/acme/settings/win-model/")

    assert response.status_code == 302
    with scope(organization=org):
        run = WinModel.objects.get()
    assert run.status == WinModelStatus.SUCCEEDED
    assert run.requested_by == admin_member.user


@pytest.mark.parametrize("who", ["member", "manager_member", "other_org_admin"])
def test_admin_page_hidden_from_others(client, request, who):
    membership = request.getfixturevalue(who)
    client.force_login(membership.user)

    assert client.get("/o/acme/settings/win-model/").status_code == 404
    assert client.post("/o/acme/settings/win-model/").status_code == 404


def test_deal_pages_show_score_and_reason(client, org, member, history, open_deals):
    train(org)
    client.force_login(member.user)
    deal = open_deals["software"]

    listing = client.get("/o/acme/deals/?status=open")
    detail = client.get(f"/o/acme/deals/{deal.pk}/")

    listed = {row.pk: row for row in listing.context["page"]}
    assert listed[deal.pk].win_reasons[0] == "Account sector software (raises the probability)"
    assert b"Account sector software (raises the probability)" in listing.content
    assert detail.context["win_score"].deal_id == deal.pk
    assert detail.context["win_reasons"][0] == "Account sector software (raises the probability)"
    assert b"data-win-score" in detail.content


def test_deal_detail_says_too_little_history(client, org, member, stages, accounts, open_deals):
    make_history(org, member, stages, accounts, count=40)
    train(org)
    client.force_login(member.user)

    response = client.get(f"/o/acme/deals/{open_deals['software'].pk}/")

    assert response.context["win_score"] is None
    assert b"Too little history" in response.content


# --- through a real broker and worker ------------------------------------------------------------


@pytest.mark.worker
def test_training_through_worker(celery_worker, org, history, open_deals):
    from pipelines.tasks import win_model_train as win_model_train_task

    with scope(organization=org):
        run, _created = win_model_run_create(organization=org, actor=None)

    status = win_model_train_task.delay(organization_id=org.pk, win_model_id=run.pk).get(timeout=120)

    assert status == WinModelStatus.SUCCEEDED
    with scope(organization=org):
        run.refresh_from_db()
        assert (run.n_train, run.n_test) == (200, 50)
        assert run.task_id != ""
        assert DealScore.objects.count() == 2


# --- command -----------------------------------------------------------------------------------


def run_win_model_train(monkeypatch, *args, as_of: str = "2017-09-30") -> str:
    """Run the command with a training time of 1,234.5 s, so the duration shows the locale's grouping."""
    from io import StringIO
    from types import SimpleNamespace

    from django.core.management import call_command

    from pipelines.management.commands import win_model_train as command_module

    clock = iter([100.0, 1334.5])
    monkeypatch.setattr(command_module, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    output = StringIO()
    call_command("win_model_train", "--org", "acme", "--as-of", as_of, *args, stdout=output)
    return output.getvalue()


def test_command_trains_and_prints_metrics(org, org_in_english, history, open_deals, monkeypatch):
    text = run_win_model_train(monkeypatch)

    assert text == (
        "Model version 1 trained in 1,234.5 s: 200 training deals (571 snapshots) closed before 08/10/2017, "
        "50 test deals (143 snapshots).\n"
        "Held-out Brier score 0.1617, AUC 0.8072; 2 open deals scored.\n"
    )
    with scope(organization=org):
        # The end of 2017-09-30 in Berlin (UTC+2 in summer) is 21:59:59 UTC.
        assert {score.scored_at for score in DealScore.objects.all()} == {
            dt.datetime(2017, 9, 30, 21, 59, 59, tzinfo=dt.timezone.utc)
        }


def test_command_prints_in_organization_language(org, history, open_deals, monkeypatch):
    text = run_win_model_train(monkeypatch)

    assert text == (
        "Modellversion 1 in 1.234,5 s trainiert: 200 Trainings-Deals (571 Snapshots), abgeschlossen vor 10.08.2017, "
        "50 Test-Deals (143 Snapshots).\n"
        "Brier-Score auf den Testdaten 0,1617, AUC 0,8072; 2 offene Deals bewertet.\n"
    )


def test_command_language_option_wins(org, history, open_deals, monkeypatch):
    text = run_win_model_train(monkeypatch, "--language", "en")

    assert text.startswith("Model version 1 trained in 1,234.5 s: 200 training deals")


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            "Model version 12 trained in 0.0 s: 1,234 training deals (56,789 snapshots) closed before 12/31/2026, "
            "2,345 test deals (10,000 snapshots).\n"
            "Held-out Brier score 0.2290, AUC –; 1,001 open deals scored.",
        ),
        (
            "de",
            "Modellversion 12 in 0,0 s trainiert: 1.234 Trainings-Deals (56.789 Snapshots), abgeschlossen vor "
            "31.12.2026, 2.345 Test-Deals (10.000 Snapshots).\n"
            "Brier-Score auf den Testdaten 0,2290, AUC –; 1.001 offene Deals bewertet.",
        ),
    ],
)
def test_training_summary_formats_numbers(language, expected):
    from django.utils import translation

    from pipelines.management.commands.win_model_train import training_summary

    run = WinModel(
        version=12, n_train=1234, n_train_rows=56789, n_test=2345, n_test_rows=10000,
        cut_on=dt.date(2026, 12, 31), brier_score=0.229, auc=None, scored_count=1001,
    )  # fmt: skip

    with translation.override(language):
        assert training_summary(run, seconds=0.04) == expected


def test_command_fails_without_history(org, org_in_english, member, stages, accounts):
    from django.core.management import CommandError, call_command

    make_history(org, member, stages, accounts, count=40)

    with pytest.raises(CommandError) as raised:
        call_command("win_model_train", "--org", "acme")

    assert raised.value.returncode == 1
    assert "20 won and 20 lost closed deals" in str(raised.value)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "invalid date '2017-02-30'; use YYYY-MM-DD, e.g. 2017-12-31"),
        ("de", "ungültiges Datum '2017-02-30'; verwenden Sie JJJJ-MM-TT, z. B. 2017-12-31"),
    ],
)
def test_command_rejects_impossible_as_of(org, language, expected):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError) as raised:
        call_command("win_model_train", "--org", "acme", "--as-of", "2017-02-30", "--language", language)

    assert str(raised.value) == expected


def test_command_unknown_organization_in_german(db):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError) as raised:
        call_command("win_model_train", "--org", "nobody", "--language", "de")

    assert str(raised.value) == (
        "Organisation nobody nicht gefunden; vergleichen Sie --org mit dem Slug in der URL /o/<slug>/."
    )


def test_training_reads_most_recent_deals(org, history, open_deals, monkeypatch):
    monkeypatch.setattr("pipelines.scoring.services.MAX_TRAINING_DEALS", 220)

    run = train(org)

    # Deals 30–249: 110 even and 110 odd, and 22 flips each way.
    assert (run.closed_won_count, run.closed_lost_count) == (110, 110)
    assert run.n_train + run.n_test == 220


def test_admin_page_lists_model_weights(client, org, admin_member, history, open_deals):
    train(org)
    client.force_login(admin_member.user)

    response = client.get("/o/acme/settings/win-model/")

    weights = response.context["page"].weights
    texts = [text for text, _weight in weights]
    # The separating sector carries the largest weights, one up and one down.
    assert set(texts[:2]) == {"Account sector software", "Account sector retail"}
    assert dict(weights)["Account sector software"] > 0
    assert dict(weights)["Account sector retail"] < 0
    assert "Deal age" in texts
    assert b"data-weights" in response.content


# --- point in time (--as-of) ---------------------------------------------------------------------
#
# A small hand-built history around the as-of day 2017-03-31 (Acme, Europe/Berlin, UTC+2 since
# 2017-03-26). The end of that day is 2017-03-31 21:59:59 UTC. Times below are UTC.

AS_OF_DAY = dt.date(2017, 3, 31)
AS_OF = dt.datetime(2017, 3, 31, 21, 59, 59, tzinfo=dt.timezone.utc)


def utc(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2017, month, day, hour, minute, tzinfo=dt.timezone.utc)


def make_deal(
    org, owner, stages, account, *, name, created_at, closed_at=None, is_won=None, deleted_at=None, history=True
) -> Deal:
    """Create one deal; with `history`, a stage change into the open stage at creation and one into won or lost at close."""
    stage, status = stages["open"], DealStatus.OPEN
    if closed_at and is_won:
        stage, status = stages["won"], DealStatus.WON
    elif closed_at:
        stage, status = stages["lost"], DealStatus.LOST
    with scopes_disabled():
        deal = Deal.objects.create(
            organization=org,
            source="test",
            external_id=name,
            name=name,
            owner=owner,
            account=account,
            pipeline=stages["open"].pipeline,
            stage=stage,
            amount=Decimal("1000.00"),
            base_amount=Decimal("1000.00"),
            currency="EUR",
            status=status,
            created_at=created_at,
            closed_at=closed_at,
            deleted_at=deleted_at,
        )
        if history:
            DealStageChange.objects.create(organization=org, deal=deal, to_stage=stages["open"], changed_at=created_at)
            if closed_at:
                DealStageChange.objects.create(
                    organization=org, deal=deal, from_stage=stages["open"], to_stage=stage, changed_at=closed_at
                )
    return deal


def make_activity(org, owner, deal, *, occurred_at) -> None:
    from pipelines.models import Activity, ActivityKind

    with scopes_disabled():
        Activity.objects.create(
            organization=org,
            source="test",
            external_id=f"A-{deal.pk}-{occurred_at:%m%d}",
            kind=ActivityKind.CALL,
            owner=owner,
            deal=deal,
            occurred_at=occurred_at,
        )


@pytest.fixture
def small_history(org, member, stages, accounts):
    """Deals closed before, on and after the as-of day, one open, one deleted, with activities around it."""
    account = accounts["software"]
    deals = {
        "early_won": make_deal(
            org, member, stages, account, name="early_won", created_at=utc(2, 1, 9), closed_at=utc(3, 10, 9), is_won=True
        ),
        # 23:30 in Berlin on the as-of day: still closed on or before it.
        "late_lost": make_deal(
            org, member, stages, account, name="late_lost", created_at=utc(2, 15, 9), closed_at=utc(3, 31, 21, 30),
            is_won=False,
        ),
        # 00:30 in Berlin on the day after: closed after the as-of day.
        "after_won": make_deal(
            org, member, stages, account, name="after_won", created_at=utc(3, 1, 9), closed_at=utc(3, 31, 22, 30),
            is_won=True,
        ),
        "still_open": make_deal(org, member, stages, account, name="still_open", created_at=utc(3, 5, 9)),
        "later_lost": make_deal(
            org, member, stages, account, name="later_lost", created_at=utc(4, 5, 9), closed_at=utc(4, 20, 9),
            is_won=False,
        ),
        "deleted_won": make_deal(
            org, member, stages, account, name="deleted_won", created_at=utc(2, 1, 9), closed_at=utc(3, 20, 9),
            is_won=True, deleted_at=utc(5, 1, 9),
        ),
    }  # fmt: skip
    make_activity(org, member, deals["early_won"], occurred_at=utc(2, 10, 9))
    make_activity(org, member, deals["early_won"], occurred_at=utc(4, 3, 9))
    make_activity(org, member, deals["after_won"], occurred_at=utc(3, 20, 9))
    make_activity(org, member, deals["after_won"], occurred_at=utc(4, 5, 9))
    return deals


def test_as_of_end_last_local_second():
    import zoneinfo

    from pipelines.scoring.services import as_of_end

    assert as_of_end(AS_OF_DAY, zoneinfo.ZoneInfo("Europe/Berlin")) == AS_OF


def test_training_deals_as_of_closed_by_then(org, small_history):
    from pipelines.scoring.services import closed_deal_counts, training_facts_load

    with scope(organization=org):
        as_of_ids = [deal.pk for deal in training_facts_load(as_of=AS_OF)]
        all_ids = [deal.pk for deal in training_facts_load()]
        as_of_counts = closed_deal_counts(as_of=AS_OF)

    assert as_of_ids == [small_history["early_won"].pk, small_history["late_lost"].pk]
    assert as_of_counts == (1, 1)
    # Without --as-of every closed deal trains; the deleted one never does.
    assert all_ids == [
        small_history["early_won"].pk,
        small_history["late_lost"].pk,
        small_history["after_won"].pk,
        small_history["later_lost"].pk,
    ]


def test_training_deal_as_of_drops_later_activity(org, small_history):
    from pipelines.scoring.services import training_facts_load

    with scope(organization=org):
        as_of_facts = training_facts_load(as_of=AS_OF)
        all_facts = training_facts_load()

    assert as_of_facts[0].activity_times == [utc(2, 10, 9)]
    assert all_facts[0].activity_times == [utc(2, 10, 9), utc(4, 3, 9)]


def test_deal_closed_later_is_open_as_of(org, member, stages, small_history):
    from pipelines.scoring.features import OwnerHistory, snapshot_at

    deal = small_history["after_won"]
    with scope(organization=org):
        facts = deal_facts_load(Deal.objects.filter(pk=deal.pk), known_at=AS_OF)[0]
        today = deal_facts_load(Deal.objects.filter(pk=deal.pk))[0]
    owners = OwnerHistory([(member.pk, utc(3, 10, 9), True), (member.pk, utc(3, 31, 21, 30), False)])

    snapshot = snapshot_at(facts, AS_OF, owners)

    assert (facts.status, facts.closed_at, facts.outcome) == (DealStatus.OPEN, None, None)
    assert facts.stage_changes == [(utc(3, 1, 9), stages["open"].pk, "Qualify", True)]
    assert facts.activity_times == [utc(3, 20, 9)]
    assert (today.status, len(today.stage_changes), len(today.activity_times)) == (DealStatus.WON, 2, 2)
    assert snapshot.stage_name == "Qualify"
    # 2017-03-01 09:00 to 2017-03-31 21:59:59 is 30 days and 13 hours.
    assert snapshot.age_days == 30
    assert snapshot.activity_count == 1
    assert (snapshot.owner_won, snapshot.owner_closed) == (1, 2)
    assert snapshot.outcome is None


def test_stage_as_of_without_earlier_change(org, member, stages, accounts):
    from pipelines.scoring.features import OwnerHistory, snapshot_at

    account = accounts["software"]
    moved_later = make_deal(org, member, stages, account, name="moved_later", created_at=utc(3, 10, 9), history=False)
    no_history_won = make_deal(
        org, member, stages, account, name="no_history_won", created_at=utc(3, 10, 9), closed_at=utc(4, 10, 9),
        is_won=True, history=False,
    )  # fmt: skip
    no_history_open = make_deal(org, member, stages, account, name="no_history_open", created_at=utc(3, 10, 9), history=False)
    with scopes_disabled():
        Deal.objects.filter(pk=moved_later.pk).update(
            stage=stages["won"], status=DealStatus.WON, closed_at=utc(4, 10, 9)
        )
        # The only recorded change comes after the as-of moment: from Qualify into Won.
        DealStageChange.objects.create(
            organization=org, deal=moved_later, from_stage=stages["open"], to_stage=stages["won"], changed_at=utc(4, 10, 9)
        )

    with scope(organization=org):
        loaded = {
            facts.pk: facts
            for facts in deal_facts_load(
                Deal.objects.filter(pk__in=[moved_later.pk, no_history_won.pk, no_history_open.pk]), known_at=AS_OF
            )
        }
    snapshots = {pk: snapshot_at(facts, AS_OF, OwnerHistory([])) for pk, facts in loaded.items()}

    assert snapshots[moved_later.pk].stage_name == "Qualify"
    # Without any stage history, its stage then is unknown: today's is the Won stage it moved into later.
    assert snapshots[no_history_won.pk] is None
    assert snapshots[no_history_open.pk].stage_name == "Qualify"


def test_run_as_of_excludes_later_closes(org, history, open_deals):
    """As of 2017-09-18 (end: 21:59:59 UTC), deals 0–239 have closed and deals 240–249 are open.

    Split of 240: position ⌊240 × 0.8⌋ = 192, cut date = deal 192's close date,
    2017-01-22 + 192 days = 2017-08-02; deals 0–191 train and 192–239 test.
    Snapshots: training 192 × 3 − 28 deals with i % 7 == 0 (0 … 189) = 548;
    test 48 × 3 − 7 (196 … 238) = 137. Outcomes of 0–239: 120 even and 120 odd,
    with 24 flips each way, so 120 won and 120 lost.
    """
    with scope(organization=org):
        run, _created = win_model_run_create(organization=org, actor=None)
        run = win_model_train(run=run, as_of=dt.datetime(2017, 9, 18, 21, 59, 59, tzinfo=dt.timezone.utc))
        scored = {score.deal_id: score.scored_at for score in DealScore.objects.all()}

    assert run.status == WinModelStatus.SUCCEEDED
    assert (run.closed_won_count, run.closed_lost_count) == (120, 120)
    assert run.cut_on == dt.date(2017, 8, 2)
    assert (run.n_train, run.n_test) == (192, 48)
    assert (run.n_train_rows, run.n_test_rows) == (548, 137)
    # Open at the as-of moment: deals 240–249, closed since; the open deals were created on 2017-09-20.
    assert sorted(scored) == sorted(deal.pk for deal in history[240:])
    assert set(scored.values()) == {dt.datetime(2017, 9, 18, 21, 59, 59, tzinfo=dt.timezone.utc)}
    assert run.scored_count == 10


def test_default_run_matches_run_after_last_close(org, history, open_deals):
    with scope(organization=org):
        run, _created = win_model_run_create(organization=org, actor=None)
        default_run = win_model_train(run=run)
        default_scores = set(DealScore.objects.values_list("deal_id", flat=True))
    as_of_run = train(org)

    assert (default_run.n_train, default_run.n_test) == (200, 50)
    assert (default_run.n_train_rows, default_run.n_test_rows) == (571, 143)
    assert (default_run.brier_score, default_run.auc) == (as_of_run.brier_score, as_of_run.auc)
    assert default_scores == {open_deals["software"].pk, open_deals["retail"].pk}


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            "Too few closed deals to train as of 08/08/2017: 199 on or before that day (100 won, 99 lost). "
            "Training needs at least 200, with at least 30 won and 30 lost. "
            "Choose a later --as-of date, 2017-08-09 at the earliest.",
        ),
        (
            "de",
            "Zu wenige abgeschlossene Deals für ein Training zum Stand 08.08.2017: 199 an oder vor diesem Tag "
            "(100 gewonnen, 99 verloren). Das Training braucht mindestens 200, davon mindestens 30 gewonnene und "
            "30 verlorene. Wählen Sie für --as-of ein späteres Datum, frühestens 2017-08-09.",
        ),
    ],
)
def test_command_rejects_too_early_as_of(org, history, language, expected):
    """By the end of 2017-08-08 deals 0–198 have closed; deal 199 (lost) closes on 2017-08-09 as the 200th."""
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError) as raised:
        call_command("win_model_train", "--org", "acme", "--as-of", "2017-08-08", "--language", language)

    assert str(raised.value) == expected
    assert raised.value.returncode == 1
    with scope(organization=org):
        assert WinModel.objects.count() == 0


def test_command_too_early_keeps_scores(org, org_in_english, history, open_deals):
    from django.core.management import CommandError, call_command

    train(org)

    with pytest.raises(CommandError) as raised:
        call_command("win_model_train", "--org", "acme", "--as-of", "2016-10-01")

    assert str(raised.value) == (
        "Too few closed deals to train as of 10/01/2016: 0 on or before that day (0 won, 0 lost). "
        "Training needs at least 200, with at least 30 won and 30 lost. "
        "Choose a later --as-of date, 2017-08-09 at the earliest."
    )
    with scope(organization=org):
        assert WinModel.objects.count() == 1
        assert DealScore.objects.count() == 2


def test_command_as_of_never_enough_history(org, org_in_english, member, stages, accounts):
    from django.core.management import CommandError, call_command

    make_history(org, member, stages, accounts, count=40)

    with pytest.raises(CommandError) as raised:
        call_command("win_model_train", "--org", "acme", "--as-of", "2017-12-31")

    assert str(raised.value) == (
        "Too few closed deals to train as of 12/31/2017: 40 on or before that day (20 won, 20 lost). "
        "Training needs at least 200, with at least 30 won and 30 lost. "
        "No later --as-of date has enough either, because all closed deals of the organization together are "
        "too few. Import more closed deals first."
    )


def test_command_trains_as_of_earliest_day(org, history, monkeypatch):
    text = run_win_model_train(monkeypatch, "--language", "en", as_of="2017-08-09")

    # Deals 0–199: split position 160, cut date 2017-01-22 + 160 days = 2017-07-01, so deals
    # 0–159 train, with 160 × 3 − 23 deals with i % 7 == 0 (0 … 154) = 457 snapshots.
    assert text.startswith(
        "Model version 1 trained in 1,234.5 s: 160 training deals (457 snapshots) closed before 07/01/2017, "
        "40 test deals"
    )
