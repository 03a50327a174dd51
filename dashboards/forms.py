"""Query-string parsing for the dashboard, the scorecard and the deal list.

These forms only read GET parameters. Every error names the rejected value
and the value to send instead, and the pages show it instead of failing.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from dashboards.models import Grain
from dashboards.selectors import METRICS
from pipelines.models import DealStatus
from pipelines.selectors import DEAL_SORT_FIELDS, DealFilters
from dashboards.analytics.drilldown import ANALYSES, analysis_parse
from dashboards.analytics.periods import parse_computable_period
from spm.ids import id_parse

# Labels of dashboards.selectors.METRICS for the filter select and the filter chips.
METRIC_LABELS = {
    "won": _("Won in the period"),
    "lost": _("Lost in the period"),
    "closed": _("Closed in the period"),
    "open": _("Open at the period's end"),
}

# Rep-table sort keys of the dashboard, mapped to the KpiRow attribute they sort by.
REP_SORT_FIELDS = {
    "won_amount": "won_amount",
    "win_rate": "win_rate",
    "sales_cycle": "sales_cycle_days_mean",
}
DEFAULT_REP_SORT = "-won_amount"


def parse_id(value: str, label: str) -> int:
    """Parse a database id (0 to spm.ids.MAX_ID) from the query string, naming the parameter on error."""
    parsed = id_parse(value)
    if parsed is not None:
        return parsed
    if value.strip().isascii() and value.strip().isdigit():
        raise ValidationError(
            gettext("Invalid %(parameter)s %(value)r; no id is that large, use an id from the page, e.g. %(parameter)s=12.")
            % {"parameter": label, "value": value}
        )
    raise ValidationError(
        gettext("Invalid %(parameter)s %(value)r; use a numeric id, e.g. %(parameter)s=12.")
        % {"parameter": label, "value": value}
    )


class IdField(forms.CharField):
    """One numeric id; the error message names the query parameter and the rejected value."""

    def to_python(self, value):
        text = super().to_python(value)
        if text in self.empty_values:
            return None
        return parse_id(text, self.label)


class IdListField(forms.Field):
    """Numeric ids from a repeated parameter (`team=3&team=4`)."""

    widget = forms.SelectMultiple

    def to_python(self, value):
        return tuple(parse_id(item, self.label) for item in (value or []) if str(item).strip())


class PeriodField(forms.CharField):
    """A fiscal period label (2017, 2017-Q2, 2017-03) parsed with the organization's fiscal calendar.

    With `allow_range`, a date range `YYYY-MM-DD..YYYY-MM-DD` (inclusive end) is accepted too.
    A period with a day outside spm.date_limits.COMPUTABLE_RANGE is invalid.
    """

    def __init__(self, *, fiscal_year_start_month: int = 1, allow_range: bool = False, **kwargs):
        self.fiscal_year_start_month = fiscal_year_start_month
        self.allow_range = allow_range
        super().__init__(**kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        if text in self.empty_values:
            return None
        try:
            return parse_computable_period(text, self.fiscal_year_start_month, allow_range=self.allow_range)
        except ValueError as error:
            raise ValidationError(str(error)) from None


def _max_length_error(parameter: str) -> str:
    # Django's MaxLengthValidator fills %(show_value)d and %(limit_value)d.
    return gettext("Invalid %(parameter)s: %%(show_value)d characters; use at most %%(limit_value)d.") % {
        "parameter": parameter
    }


def _choice_error(parameter: str, choices) -> str:
    # Django fills %(value)s with the rejected choice.
    return gettext("Invalid %(parameter)s %%(value)r; use one of: %(choices)s.") % {
        "parameter": parameter,
        "choices": ", ".join(choices),
    }


class PeriodFilterForm(forms.Form):
    """The `period` parameter shared by the dashboard and the scorecard."""

    period = PeriodField(label="period", required=False)

    def __init__(self, data, *, organization, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["period"].fiscal_year_start_month = organization.fiscal_year_start_month


class DashboardFilterForm(PeriodFilterForm):
    team = IdField(label="team", required=False)
    sort = forms.ChoiceField(required=False)

    def __init__(self, data, *, organization, **kwargs):
        super().__init__(data, organization=organization, **kwargs)
        sort_keys = [*REP_SORT_FIELDS, *(f"-{key}" for key in REP_SORT_FIELDS)]
        self.fields["sort"].choices = [(key, key) for key in sort_keys]
        self.fields["sort"].error_messages["invalid_choice"] = _choice_error("sort", sort_keys)


class DealFilterForm(forms.Form):
    period = PeriodField(label="period", required=False, allow_range=True)
    metric = forms.ChoiceField(required=False)
    grain = forms.ChoiceField(required=False)
    subject = IdField(label="subject", required=False)
    team = IdListField(label="team", required=False)
    stage = IdField(label="stage", required=False)
    status = forms.ChoiceField(required=False)
    owner = IdField(label="owner", required=False)
    q = forms.CharField(required=False, max_length=200)
    sort = forms.ChoiceField(required=False)
    # Pipeline analytics drill-down; see dashboards.analytics.drilldown.
    analysis = forms.ChoiceField(required=False)
    key = forms.CharField(required=False, max_length=200)

    def __init__(self, data, *, organization, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["period"].fiscal_year_start_month = organization.fiscal_year_start_month
        choice_fields = {
            "analysis": list(ANALYSES),
            "metric": list(METRICS),
            "grain": list(Grain.values),
            "status": list(DealStatus.values),
            "sort": [*DEAL_SORT_FIELDS, *(f"-{key}" for key in DEAL_SORT_FIELDS)],
        }
        for name, values in choice_fields.items():
            self.fields[name].choices = [(value, value) for value in values]
            self.fields[name].error_messages["invalid_choice"] = _choice_error(name, values)
        for name in ("q", "key"):
            self.fields[name].error_messages["max_length"] = _max_length_error(name)

    def clean(self):
        cleaned = super().clean()
        period, metric = cleaned.get("period"), cleaned.get("metric")
        grain, subject = cleaned.get("grain"), cleaned.get("subject")
        analysis = cleaned.get("analysis")

        if analysis and metric:
            self.add_error("metric", gettext("Use either metric or analysis, not both; remove one of them."))
        elif analysis and "period" not in self.errors:
            try:
                analysis_parse(analysis, cleaned.get("key") or "", period)
            except ValueError as error:
                self.add_error("key", str(error))

        # A metric only means something for a period, and a period alone selects nothing.
        if metric and period is None and "period" not in self.errors:
            self.add_error(
                "metric",
                gettext("The metric %(metric)r needs a period; add e.g. period=2017-Q2, or remove the metric.")
                % {"metric": metric},
            )
        if period is not None and not metric and not analysis and "metric" not in self.errors:
            self.add_error(
                "period",
                gettext("The period %(period)r needs a metric; add metric=won, lost, closed or open.")
                % {"period": period.label},
            )
        if grain and grain != Grain.ORGANIZATION and subject is None and "subject" not in self.errors:
            self.add_error(
                "subject",
                gettext("The grain %(grain)r needs a subject id; add e.g. subject=12, or remove the grain.")
                % {"grain": grain},
            )
        if subject is not None and not grain and "grain" not in self.errors:
            self.add_error(
                "grain",
                gettext("The subject %(subject)s needs a grain; add grain=rep, team or territory.")
                % {"subject": subject},
            )
        return cleaned

    def error_messages_flat(self) -> list[str]:
        return [message for messages in self.errors.values() for message in messages]

    def filters(self) -> DealFilters:
        """Return the validated filters; call only after is_valid() returned True."""
        data = self.cleaned_data
        return DealFilters(
            period=data["period"],
            metric=data["metric"],
            grain=data["grain"],
            subject_id=data["subject"],
            team_ids=data["team"],
            stage_id=data["stage"],
            status=data["status"],
            owner_id=data["owner"],
            search=data["q"].strip(),
            sort=data["sort"],
            analysis=data["analysis"],
            analysis_key=data["key"].strip(),
        )
