"""demo_setup --quotas: equal quarterly won_revenue quotas from the year's results."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled

from goals.models import Quota
from pipelines.models import DealStatus, StageKind
from tests.factories import DealFactory, PipelineFactory, StageFactory


@pytest.mark.parametrize(
    ("language", "first_run", "second_run"),
    [
        (
            "en",
            "Quarterly won revenue quota per rep in FY 2017: €20,000.00; 8 created, 0 updated, 0 unchanged.",
            "Quarterly won revenue quota per rep in FY 2017: €20,000.00; 0 created, 0 updated, 8 unchanged.",
        ),
        (
            "de",
            "Quartals-Quota für gewonnenen Umsatz je Vertriebsmitarbeiter/in im GJ 2017: 20.000,00\xa0€; "
            "8 angelegt, 0 aktualisiert, 0 unverändert.",
            "Quartals-Quota für gewonnenen Umsatz je Vertriebsmitarbeiter/in im GJ 2017: 20.000,00\xa0€; "
            "0 angelegt, 0 aktualisiert, 8 unverändert.",
        ),
    ],
)
def test_demo_quotas_from_won_revenue(org, manager_member, member, other_rep, language, first_run, second_run):
    org.language = language
    org.save(update_fields=["language"])
    # Won in FY2017: 100,000 + 50,000 = 150,000 by 2 reps; 150,000 / 2 / 4 = 18,750, rounded to 20,000.
    with scopes_disabled():
        won = StageFactory(pipeline=PipelineFactory(organization=org), kind=StageKind.WON)
        for owner, amount in ((member, "100000"), (other_rep, "50000")):
            DealFactory(owner=owner, stage=won, status=DealStatus.WON, amount=Decimal(amount),
                        closed_at=dt.datetime(2017, 6, 1, 12, tzinfo=dt.UTC))  # fmt: skip
    output = io.StringIO()

    call_command("demo_setup", org="acme", manager_email="manager@acme.example", rep_email="rep@acme.example",
                 password="lunch-in-leipzig-42", quotas=2017, stdout=output)  # fmt: skip
    call_command("demo_setup", org="acme", manager_email="manager@acme.example", rep_email="rep@acme.example",
                 password="lunch-in-leipzig-42", quotas=2017, stdout=output)  # fmt: skip

    with scopes_disabled():
        quotas = list(Quota.objects.filter(organization=org).values_list("membership_id", "period_start", "target"))
    assert len(quotas) == 8
    assert {target for _member, _start, target in quotas} == {Decimal("20000.00")}
    assert {start for _member, start, _target in quotas} == {dt.date(2017, month, 1) for month in (1, 4, 7, 10)}
    lines = output.getvalue().splitlines()
    assert lines[0] == first_run
    assert lines[5] == second_run


def test_demo_quota_rounds_half_up(org, manager_member, member, other_rep):
    # 100,000 / 2 reps / 4 is 12,500, exactly 2.5 steps of 5,000, which half-even rounding would make 10,000.
    with scopes_disabled():
        won = StageFactory(pipeline=PipelineFactory(organization=org), kind=StageKind.WON)
        for owner in (member, other_rep):
            DealFactory(owner=owner, stage=won, status=DealStatus.WON, amount=Decimal("50000"),
                        closed_at=dt.datetime(2017, 6, 1, 12, tzinfo=dt.UTC))  # fmt: skip

    call_command("demo_setup", org="acme", manager_email="manager@acme.example", rep_email="rep@acme.example",
                 password="lunch-in-leipzig-42", quotas=2017, stdout=io.StringIO())  # fmt: skip

    with scopes_disabled():
        targets = set(Quota.objects.filter(organization=org).values_list("target", flat=True))
    assert targets == {Decimal("15000.00")}
