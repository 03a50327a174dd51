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
        return win_model_train(run=run, now=SCORED_AT)


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


def run_win_model_train(monkeypatch, *args) -> str:
    """Run the command with a training time of 1,234.5 s, so the duration shows the locale's grouping."""
    from io import StringIO
    from types import SimpleNamespace

    from django.core.management import call_command

    from pipelines.management.commands import win_model_train as command_module

    clock = iter([100.0, 1334.5])
    monkeypatch.setattr(command_module, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    output = StringIO()
    call_command("win_model_train", "--org", "acme", "--as-of", "2017-09-30", *args, stdout=output)
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
