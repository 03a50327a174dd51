"""Query-string and settings forms of the pipeline and activity pages."""

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from dashboards.analytics.winloss import DIMENSIONS, PRODUCT
from dashboards.forms import IdField, PeriodField, PeriodFilterForm, _choice_error
from spm.date_limits import FilterDateField


class PipelineFilterForm(PeriodFilterForm):
    """`period` (fiscal period or date range), `pipeline` id, `as_of` date and win/loss `dimension`."""

    pipeline = IdField(label="pipeline", required=False)
    as_of = FilterDateField(required=False, input_formats=["%Y-%m-%d"])
    dimension = forms.ChoiceField(required=False)

    def __init__(self, data, *, organization, **kwargs):
        super().__init__(data, organization=organization, **kwargs)
        self.fields["period"] = PeriodField(
            label="period",
            required=False,
            allow_range=True,
            fiscal_year_start_month=organization.fiscal_year_start_month,
        )
        self.fields["dimension"].choices = [(key, key) for key in DIMENSIONS]
        self.fields["dimension"].error_messages["invalid_choice"] = _choice_error("dimension", list(DIMENSIONS))
        self.fields["as_of"].error_messages["invalid"] = gettext(
            "Invalid as_of date; use YYYY-MM-DD, e.g. as_of=2017-04-01."
        )

    @property
    def dimension_value(self) -> str:
        return self.cleaned_data.get("dimension") or PRODUCT


class StageThresholdForm(forms.Form):
    """One stage's stall threshold in days; empty means the stage never stalls."""

    stage_id = forms.IntegerField(widget=forms.HiddenInput)
    stalled_after_days = forms.IntegerField(
        label=_("stalled after (days)"), required=False, min_value=1, max_value=3650
    )


StageThresholdFormSet = forms.formset_factory(StageThresholdForm, extra=0)
