"""Forms of the skills pages: a competency with its levels, an assessment, a plan, a goal, a training item."""

import datetime as dt
from decimal import Decimal

from django import forms
from django.utils.formats import number_format
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from coaching.forms import NOTE_MAX_LENGTH
from coaching.skills.indicators import RATIO_INDICATORS, target_direction_error
from coaching.skills.models import LEVELS, Competency, Indicator
from dashboards.analytics.periods import parse_period_or_range
from goals.attainment import organization_today
from pipelines.models import Stage, StageKind
from spm.date_limits import past_range, planning_range, short_date
from spm.ids import IdModelChoiceField
from spm.widgets import IsoDateInput

DATE_WIDGET = IsoDateInput()
SHORT_TEXT = forms.Textarea(attrs={"rows": 2})


class CompetencyForm(forms.Form):
    name_de = forms.CharField(label=_("Name (German)"), max_length=100)
    name_en = forms.CharField(label=_("Name (English)"), max_length=100)
    description_de = forms.CharField(label=_("Description (German)"), required=False, widget=SHORT_TEXT)
    description_en = forms.CharField(label=_("Description (English)"), required=False, widget=SHORT_TEXT)
    order = forms.IntegerField(label=_("Position in the rubric"), min_value=0, max_value=32767, initial=0)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for level in LEVELS:
            for language, language_label in (("de", _("German")), ("en", _("English"))):
                self.fields[f"level_{level}_{language}"] = forms.CharField(
                    label=_("Level %(level)s (%(language)s)") % {"level": level, "language": language_label},
                    required=False,
                    widget=SHORT_TEXT,
                )

    @classmethod
    def initial_for(cls, competency: Competency) -> dict:
        initial = {
            field: getattr(competency, field) for field in ("name_de", "name_en", "description_de", "description_en", "order")
        }
        for level in competency.levels.all():
            initial[f"level_{level.level}_de"] = level.description_de
            initial[f"level_{level.level}_en"] = level.description_en
        return initial

    def level_pairs(self) -> list[tuple]:
        """Bound fields per level, German then English, for the template's grid."""
        return [(level, self[f"level_{level}_de"], self[f"level_{level}_en"]) for level in LEVELS]

    def split(self) -> tuple[dict, dict]:
        """Return (competency fields, {level: (German, English)}) from cleaned data."""
        data = self.cleaned_data
        fields = {key: data[key] for key in ("name_de", "name_en", "description_de", "description_en", "order")}
        levels = {level: (data[f"level_{level}_de"], data[f"level_{level}_en"]) for level in LEVELS}
        return fields, levels


class AssessmentForm(forms.Form):
    assessed_on = forms.DateField(label=_("Date of the assessment"), widget=DATE_WIDGET)
    # No max_length: clean_note writes the counts with the language's digit grouping.
    note = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2, "maxlength": NOTE_MAX_LENGTH})
    )

    def __init__(self, *args, competencies: list[Competency], today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.competencies = competencies
        # The latest assessment of each kind is the member's current rating, so it cannot lie ahead.
        self.allowed_days = past_range(today)
        self.allowed_days.limit_widget(self.fields["assessed_on"])
        for competency in competencies:
            descriptions = {level.level: level.description for level in competency.levels.all()}
            choices = [("", _("not rated"))] + [
                (str(level), f"{level} – {descriptions[level]}" if descriptions.get(level) else str(level)) for level in LEVELS
            ]
            self.fields[f"competency_{competency.pk}"] = forms.TypedChoiceField(
                label=competency.name, choices=choices, coerce=int, required=False, empty_value=None,
                help_text=competency.description,
            )

    def clean_assessed_on(self) -> dt.date:
        return self.allowed_days.check(self.cleaned_data["assessed_on"])

    def clean_note(self) -> str:
        note = self.cleaned_data["note"]
        if len(note) > NOTE_MAX_LENGTH:
            raise forms.ValidationError(
                gettext("The note has %(length)s characters; shorten it to at most %(max_length)s characters.")
                % {
                    "length": number_format(len(note), force_grouping=True),
                    "max_length": number_format(NOTE_MAX_LENGTH, force_grouping=True),
                },
                code="max_length",
            )
        return note

    def competency_fields(self):
        return [self[f"competency_{competency.pk}"] for competency in self.competencies]

    def levels(self) -> dict[int, int]:
        """Return {competency id: level} for the competencies given a level."""
        return {
            competency.pk: self.cleaned_data[f"competency_{competency.pk}"]
            for competency in self.competencies
            if self.cleaned_data.get(f"competency_{competency.pk}") is not None
        }


class PlanForm(forms.Form):
    title = forms.CharField(label=_("Title of the plan"), max_length=200)


class _DeleteConfirmForm(forms.Form):
    """A required confirmation box, as contests use before deleting; subclasses set the label."""

    confirm_label = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["confirm"] = forms.BooleanField(
            label=self.confirm_label,
            error_messages={"required": _("Tick the box to confirm the deletion.")},
        )


class CompetencyDeleteForm(_DeleteConfirmForm):
    """The confirmation box of a competency, whose label states how many ratings go with it."""

    def __init__(self, *args, rating_count: int, **kwargs):
        super().__init__(*args, **kwargs)
        if rating_count:
            label = ngettext(
                "I understand that the competency is deleted for good, together with %(count)s rating given on it.",
                "I understand that the competency is deleted for good, together with %(count)s ratings given on it.",
                rating_count,
            ) % {"count": number_format(rating_count, force_grouping=True)}
        else:
            label = gettext("I understand that the competency is deleted for good. No rating was given on it.")
        self.fields["confirm"].label = label


class PlanDeleteForm(_DeleteConfirmForm):
    confirm_label = _("I understand that the plan with its goals and training items is deleted for good.")


class GoalDeleteForm(_DeleteConfirmForm):
    confirm_label = _("I understand that the goal is deleted for good.")


class TrainingItemDeleteForm(_DeleteConfirmForm):
    confirm_label = _("I understand that the training item is deleted for good.")


class GoalForm(forms.Form):
    indicator = forms.ChoiceField(label=_("Indicator"), choices=Indicator.choices)
    stage = IdModelChoiceField(
        label=_("Stage"),
        queryset=Stage.objects.none(),
        required=False,
        empty_label=_("– no stage –"),
        help_text=_("Only for stage conversion (from this stage to the next) and time in stage."),
    )
    baseline_period_label = forms.CharField(
        label=_("Baseline period"),
        max_length=32,
        help_text=_("Period whose value is the starting point: 2017-Q2, 2017-03, 2017 or 2017-01-01..2017-03-31."),
    )
    period_label = forms.CharField(
        label=_("Target period"),
        max_length=32,
        help_text=_("Period in which the target should be reached; its last day is the due date."),
    )
    target_value = forms.DecimalField(
        label=_("Target"),
        max_digits=14,
        decimal_places=4,
        help_text=_("Conversion and win rate in percent (40 for 40%), deal size in the base currency, time in days."),
        widget=forms.NumberInput(attrs={"min": "0"}),
    )

    def __init__(self, *args, organization, member=None, **kwargs):
        """`member` is the plan's member, whose baseline the form measures to check the target's direction.

        Without it the form leaves that check to the service that saves the goal.
        """
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.member = member
        self.fields["stage"].queryset = (
            Stage.objects.filter(kind=StageKind.OPEN).select_related("pipeline").order_by("pipeline__name", "order")
        )
        self.fields["stage"].label_from_instance = lambda stage: f"{stage.pipeline.name}: {stage.name}"

    @classmethod
    def initial_for(cls, goal) -> dict:
        """Return the form values of a saved goal; ratio targets are shown in percent, as they are entered."""
        target = goal.target_value * 100 if goal.indicator in RATIO_INDICATORS else goal.target_value
        # 0.400000 × 100 is shown as 40, 12.500000 as 12.5; normalize() alone would write 4E+1.
        target = target.quantize(Decimal(1)) if target == target.to_integral_value() else target.normalize()
        return {
            "indicator": goal.indicator,
            "stage": goal.stage_id,
            "baseline_period_label": goal.baseline_period_label,
            "period_label": goal.period_label,
            "target_value": target,
        }

    def _clean_period(self, name: str) -> str:
        """Return the stripped label after checking that it parses and starts within its allowed range.

        The baseline is measured, so it must have started by today. The target
        period may start up to PLANNING_YEARS ahead (spm.date_limits).
        """
        value = self.cleaned_data[name].strip()
        try:
            period = parse_period_or_range(value, self.organization.fiscal_year_start_month)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        today = organization_today(self.organization)
        allowed = past_range(today) if name == "baseline_period_label" else planning_range(today)
        allowed.check_period(period, value)
        return value

    def clean_baseline_period_label(self):
        return self._clean_period("baseline_period_label")

    def clean_period_label(self):
        return self._clean_period("period_label")

    def _check_period_order(self, baseline_label: str, period_label: str) -> None:
        """Add an error unless the target period starts no earlier and ends later than the baseline period."""
        start_month = self.organization.fiscal_year_start_month
        baseline = parse_period_or_range(baseline_label, start_month)
        period = parse_period_or_range(period_label, start_month)
        params = {
            "period": period_label,
            "period_start": short_date(period.start),
            "period_end": short_date(period.last_day),
            "baseline": baseline_label,
            "baseline_start": short_date(baseline.start),
            "baseline_end": short_date(baseline.last_day),
        }
        if period.start < baseline.start:
            message = gettext(
                "The target period %(period)s starts on %(period_start)s, before the baseline period %(baseline)s, "
                "which starts on %(baseline_start)s; choose a target period after the baseline."
            )
        elif period.last_day <= baseline.last_day:
            message = gettext(
                "The target period %(period)s ends on %(period_end)s, not after the baseline period %(baseline)s, "
                "which ends on %(baseline_end)s; choose a target period that ends later."
            )
        else:
            return
        self.add_error("period_label", message % params)

    def clean(self):
        data = super().clean()
        if data.get("baseline_period_label") and data.get("period_label"):
            self._check_period_order(data["baseline_period_label"], data["period_label"])
        indicator = data.get("indicator")
        if indicator in (Indicator.STAGE_CONVERSION, Indicator.TIME_IN_STAGE) and not data.get("stage"):
            self.add_error("stage", _("This indicator needs a stage; choose one."))
        target = data.get("target_value")
        if target is not None and indicator in RATIO_INDICATORS:
            if not Decimal(0) <= target <= Decimal(100):
                self.add_error("target_value", _("%(value)s is not a percentage; enter 0 to 100.") % {"value": target})
            else:
                data["target_value"] = target / 100
        elif target is not None and target < 0:
            # Deal sizes, counts and days cannot be negative, and an unmeasured baseline would not catch it.
            self.add_error(
                "target_value",
                gettext("The target %(value)s is negative; enter 0 or more.") % {"value": number_format(target)},
            )
        if self.member is not None and not self.errors:
            self._check_target_direction(data)
        return data

    def _check_target_direction(self, data: dict) -> None:
        """Add an error unless the target is on the better side of the baseline measured for the member."""
        baseline_label = data["baseline_period_label"]
        error = target_direction_error(
            organization=self.organization,
            member=self.member,
            indicator=data["indicator"],
            stage=data.get("stage"),
            baseline_period=parse_period_or_range(baseline_label, self.organization.fiscal_year_start_month),
            baseline_label=baseline_label,
            target=data["target_value"],
        )
        if error:
            self.add_error("target_value", error)


class TrainingItemForm(forms.Form):
    title = forms.CharField(label=_("Training item"), max_length=200)
    due_on = forms.DateField(label=_("Due date"), widget=DATE_WIDGET)

    def __init__(self, *args, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.allowed_days = planning_range(today)
        self.allowed_days.limit_widget(self.fields["due_on"])

    def clean_due_on(self) -> dt.date:
        return self.allowed_days.check(self.cleaned_data["due_on"])
