"""Helpers shared by the forecast tests: forecast calls submitted through the service."""

import datetime as dt
from decimal import Decimal

from django_scopes import scope

from goals.forecasts import rollup
from spm.fiscal import fiscal_quarter

Q2 = fiscal_quarter(2017, 2, 1)
APRIL_15 = dt.date(2017, 4, 15)


def submit_forecast(
    org, subject, commit, best_case, *, submitted_by=None, period=Q2, today=APRIL_15, submitted_at=None
):
    """Submit a forecast call for `subject` through `rollup.forecast_submit` and return the stored submission.

    `commit` and `best_case` are amounts as strings or Decimals. The subject submits
    their own call unless `submitted_by` is given. Raises ValidationError as the service does.
    """
    with scope(organization=org):
        return rollup.forecast_submit(
            organization=org,
            subject=subject,
            submitted_by=submitted_by or subject,
            period=period,
            commit_amount=Decimal(commit),
            best_case_amount=Decimal(best_case),
            today=today,
            submitted_at=submitted_at,
        )
