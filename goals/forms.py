"""Forms of the goals admin pages: settings, quota editor filters, uploads, teams, territories, people."""

import re
from decimal import Decimal

from babel.numbers import format_percent
from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from dashboards.templatetags.spm_format import current_locale
from goals import services
from goals.models import QuotaMetric, QuotaTemplate, Team, Territory
from goals.parsing import parse_number
from pipelines.forms import empty_upload_check
from pipelines.importers.base import ImportSourceError, RowRejected
from pipelines.upload_limits import file_size_check
from spm.date_limits import planning_range
from spm.ids import IdModelChoiceField, IdModelMultipleChoiceField
from spm.models import (
    TIME_ZONE_AREAS,
    LeaderboardPrivacy,
    Membership,
    Role,
    time_zone_names,
)
from spm.widgets import IsoDateInput

# Between a ramp schedule's monthly percentages, after percent signs are removed: slashes, semicolons, commas or spaces.
RAMP_SEPARATORS = re.compile(r"[/;,\s]+")
# A comma between two digits, as in the German "25,5". It is read as a decimal comma, never as a separator.
RAMP_DECIMAL_COMMA = re.compile(r"\d+(?:,\d+)+")

MONTH_NAMES = [
    _("January"), _("February"), _("March"), _("April"), _("May"), _("June"),
    _("July"), _("August"), _("September"), _("October"), _("November"), _("December"),
]  # fmt: skip


class BootstrapFormMixin:
    """Give every widget Bootstrap's small form classes, so templates can render plain `{{ field }}`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css_class = "form-check-input"
            elif isinstance(widget, forms.Select):
                css_class = "form-select form-select-sm"
            else:
                css_class = "form-control form-control-sm"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css_class}".strip()

    def full_clean(self):
        """Validate, then mark the widgets of fields with errors as invalid for Bootstrap and screen readers."""
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()
                widget.attrs["aria-invalid"] = "true"


# Empty choice of a required select. Django's default label "---------" is not translated.
CHOOSE_LABEL = _("– choose –")

LEVEL_CHOICES = [("rep", _("Reps")), ("team", _("Teams")), ("territory", _("Territories"))]


class OrganizationSettingsForm(BootstrapFormMixin, forms.Form):
    fiscal_year_start_month = forms.TypedChoiceField(
        label=_("Fiscal year starts in"),
        coerce=int,
        choices=[(number, name) for number, name in enumerate(MONTH_NAMES, start=1)],
        help_text=_("A fiscal year is named by the calendar year in which it ends."),
    )
    # __init__ sets the choices, because they depend on the organization's current zone.
    time_zone = forms.ChoiceField(label=_("Time zone"))
    currency = forms.CharField(
        label=_("Base currency"),
        max_length=3,
        help_text=_(
            "ISO 4217 code, e.g. EUR. It can only be changed while the organization has no deals, quotas, "
            "forecasts or exchange rates, because existing amounts are not converted."
        ),
    )
    language = forms.ChoiceField(label=_("Default language"), choices=[("de", _("German")), ("en", _("English"))])
    attainment_warning_percent = forms.DecimalField(
        label=_("Early-warning threshold (%)"),
        min_value=0,
        max_value=200,
        decimal_places=1,
        max_digits=5,
        help_text=_("Warn when a rep's projected attainment at period end falls below this percentage."),
    )
    leaderboard_privacy = forms.ChoiceField(label=_("Leaderboard privacy"), choices=LeaderboardPrivacy.choices)
    minimum_group_size = forms.IntegerField(
        label=_("Minimum group size"),
        min_value=0,
        max_value=1000,
        help_text=_("Team figures of groups with fewer members are hidden; 0 turns this off."),
    )
    reason = forms.CharField(label=_("Reason (for the audit log)"), required=False, max_length=500)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = time_zone_choices(current=self.initial.get("time_zone", ""))


def time_zone_choices(*, current: str = "") -> list:
    """Return the time zone choices: "UTC", then one group per area, labelled by location ("Berlin" under "Europe").

    `current`, the organization's stored zone, comes first when it is not one of
    `time_zone_names()` (a legacy name such as US/Eastern), so the form can save the
    other settings without changing it.
    """
    choices = [(current, current)] if current and current not in time_zone_names() else []
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in time_zone_names():
        area, _slash, location = name.partition("/")
        if location:
            groups.setdefault(area, []).append((name, location.replace("_", " ")))
        else:
            choices.append((name, name))
    choices.extend((TIME_ZONE_AREAS[area], options) for area, options in groups.items())
    return choices


class QuotaGridForm(BootstrapFormMixin, forms.Form):
    year = forms.IntegerField(label=_("Fiscal year"), min_value=2000, max_value=2100, required=False)
    granularity = forms.ChoiceField(
        label=_("Periods"),
        choices=[("month", _("Months")), ("quarter", _("Quarters")), ("year", _("Year"))],
        required=False,
    )
    level = forms.ChoiceField(label=_("Rows"), choices=LEVEL_CHOICES, required=False)
    metric = forms.ChoiceField(label=_("Metric"), choices=QuotaMetric.choices, required=False)

    def values(self, default_year: int) -> dict:
        """Return the chosen year, granularity, level and metric, with defaults for missing or invalid ones."""
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "year": data.get("year") or default_year,
            "granularity": data.get("granularity") or "quarter",
            "level": data.get("level") or "rep",
            "metric": data.get("metric") or QuotaMetric.WON_REVENUE,
        }


class TableUploadForm(BootstrapFormMixin, forms.Form):
    """One CSV or XLSX file of at most IMPORT_MAX_UPLOAD_BYTES, the limit of the CRM imports."""

    # Empty files pass the field, so that clean_file names the file as the CRM import does.
    file = forms.FileField(label=_("CSV or XLSX file"), allow_empty_file=True)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        empty_upload_check(upload)
        try:
            file_size_check(upload.name, upload.size)
        except ImportSourceError as error:
            raise ValidationError(str(error)) from None
        return upload


class QuotaUploadForm(TableUploadForm):
    pass


class PeopleUploadForm(TableUploadForm):
    pass


class AmountField(forms.CharField):
    """A non-negative amount written the German (12.500,50) or English (12,500.50) way, at most MAX_MONEY_AMOUNT."""

    def to_python(self, value):
        text = super().to_python(value)
        if text in self.empty_values:
            return None
        # parse_number's own reason for a negative number speaks of targets.
        if text.startswith("-"):
            raise ValidationError(gettext("%(label)s must be 0 or more, not %(value)s.") % {"label": self.label, "value": text})
        try:
            return parse_number(text, str(self.label))
        except RowRejected as error:
            raise ValidationError(
                gettext("%(label)s: %(value)r is not valid (%(reason)s).")
                % {"label": self.label, "value": text, "reason": error.reason}
            ) from None


class QuotaTemplateForm(BootstrapFormMixin, forms.ModelForm):
    # The model field would accept 18 digits and only the English notation.
    target = AmountField(label=_("Target"))

    class Meta:
        model = QuotaTemplate
        fields = ["name", "metric", "period_kind", "target", "is_prorated"]

    def __init__(self, *args, **kwargs):
        # The quota editor's grid filter also has a metric field, so the two need distinct ids.
        kwargs.setdefault("auto_id", "id_template_%s")
        super().__init__(*args, **kwargs)
        for name in ("metric", "period_kind"):
            field = self.fields[name]
            field.choices = [("", CHOOSE_LABEL), *(choice for choice in field.choices if choice[0] != "")]

    def clean(self):
        from goals.services import quota_target_check

        cleaned = super().clean()
        metric, target = cleaned.get("metric"), cleaned.get("target")
        if metric and target is not None:
            try:
                quota_target_check(metric=metric, target=target)
            except ValidationError as error:
                self.add_error("target", error)
        return cleaned


class QuotaTemplateApplyForm(BootstrapFormMixin, forms.Form):
    template = IdModelChoiceField(
        label=_("Template"), queryset=QuotaTemplate.objects.none(), empty_label=_("– choose a template –")
    )
    period = forms.CharField(label=_("Period"), help_text=_("2025, 2025-Q1 or 2025-03, matching the template."))
    members = IdModelMultipleChoiceField(label=_("Reps"), queryset=Membership.objects.none())
    reason = forms.CharField(label=_("Reason (for the audit log)"), required=False, max_length=500)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Deferred because SQLite may fail to read back a target above the maximum (see views_admin._template_target_check).
        self.fields["template"].queryset = QuotaTemplate.objects.defer("target").order_by("name")
        # A template sets rep quotas, which goals.services.quota_update accepts only for the rep role.
        self.fields["members"].queryset = (
            Membership.objects.filter(role=Role.REP).select_related("user").order_by("user__name")
        )
        self.fields["members"].label_from_instance = lambda member: member.display_name


class TeamForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    parent = IdModelChoiceField(
        label=_("Parent team"), queryset=Team.objects.none(), required=False, empty_label=_("– none (top level) –")
    )
    manager = IdModelChoiceField(
        label=_("Manager"), queryset=Membership.objects.none(), required=False, empty_label=_("– no manager –")
    )
    reason = forms.CharField(label=_("Reason (for the audit log)"), required=False, max_length=500)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = Team.objects.order_by("name")
        self.fields["manager"].queryset = (
            Membership.objects.filter(role__in=[Role.MANAGER, Role.ADMIN]).select_related("user").order_by("user__name")
        )
        self.fields["manager"].label_from_instance = lambda member: member.display_name


class TerritoryForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    parent = IdModelChoiceField(
        label=_("Parent territory"), queryset=Territory.objects.none(), required=False, empty_label=_("– none (top level) –")
    )
    reason = forms.CharField(label=_("Reason (for the audit log)"), required=False, max_length=500)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = Territory.objects.order_by("name")


class PlannedDatesMixin:
    """Form mixin that limits `planned_date_fields` to spm.date_limits.planning_range, in validation and date pickers.

    A working day, assignment or leave far outside that range is a typing error, and years
    such as 0001 or 9999 break the fiscal period arithmetic of the attainment pages.
    """

    planned_date_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.allowed_days = planning_range(timezone.localdate())
        for name in self.planned_date_fields:
            self.allowed_days.limit_widget(self.fields[name])

    def clean(self):
        cleaned_data = super().clean()
        for name in self.planned_date_fields:
            day = cleaned_data.get(name)
            if day is None:
                continue
            try:
                self.allowed_days.check(day)
            except ValidationError as error:
                self.add_error(name, error)
        return cleaned_data


class MemberForm(PlannedDatesMixin, BootstrapFormMixin, forms.Form):
    planned_date_fields = ("active_from", "active_to")

    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
    active_from = forms.DateField(label=_("First working day"), required=False, widget=IsoDateInput())
    active_to = forms.DateField(label=_("Last working day"), required=False, widget=IsoDateInput())
    ramp_schedule = IdModelChoiceField(
        label=_("Ramp schedule"), queryset=None, required=False, empty_label=_("– no ramp (full quota) –")
    )
    manager = IdModelChoiceField(
        label=_("Direct manager"),
        queryset=Membership.objects.none(),
        required=False,
        empty_label=_("– none –"),
        help_text=_(
            "The direct manager sees this member's pages and deals, besides the managers of their team. "
            "A team change leaves the direct manager as it is."
        ),
    )
    reason = forms.CharField(label=_("Reason (for the audit log)"), required=False, max_length=500)

    def __init__(self, *args, member: Membership | None = None, **kwargs):
        from goals.models import RampSchedule

        super().__init__(*args, **kwargs)
        self.member = member
        self.fields["ramp_schedule"].queryset = RampSchedule.objects.order_by("name")
        self.fields["ramp_schedule"].label_from_instance = ramp_schedule_label
        managers = Membership.objects.filter(role__in=[Role.MANAGER, Role.ADMIN]).select_related("user")
        if member is not None:
            managers = managers.exclude(pk=member.pk)
        self.fields["manager"].queryset = managers.order_by("user__name", "user__email")
        self.fields["manager"].label_from_instance = lambda manager: manager.display_name

    def clean_manager(self):
        manager = self.cleaned_data["manager"]
        if self.member is not None:
            services.manager_loop_check(member=self.member, manager=manager)
        return manager


class AssignmentForm(PlannedDatesMixin, BootstrapFormMixin, forms.Form):
    planned_date_fields = ("valid_from",)
    team = IdModelChoiceField(label=_("Team"), queryset=Team.objects.none(), required=False, empty_label=_("– no team –"))
    territory = IdModelChoiceField(
        label=_("Territory"), queryset=Territory.objects.none(), required=False, empty_label=_("– no territory –")
    )
    # timezone.localdate is today in the organization's time zone, which OrganizationMiddleware activates.
    valid_from = forms.DateField(label=_("Valid from"), initial=timezone.localdate, widget=IsoDateInput())
    reason = forms.CharField(label=_("Reason (for the audit log)"), required=False, max_length=500)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = Team.objects.order_by("name")
        self.fields["territory"].queryset = Territory.objects.order_by("name")


class LeaveForm(PlannedDatesMixin, BootstrapFormMixin, forms.Form):
    planned_date_fields = ("starts_on", "ends_on")
    starts_on = forms.DateField(label=_("First day"), widget=IsoDateInput())
    ends_on = forms.DateField(label=_("Last day"), widget=IsoDateInput())
    reason = forms.CharField(label=_("Reason"), required=False, max_length=200)


def ramp_percentages_text(month_percentages: list[int]) -> str:
    """Format a ramp's monthly percentages in the active language, e.g. "25% / 50% / 75%" or "25 % / 50 % / 75 %"."""
    locale = current_locale()
    return " / ".join(format_percent(Decimal(value) / 100, locale=locale) for value in month_percentages)


def ramp_schedule_label(schedule) -> str:
    """Name a ramp schedule with its monthly percentages, e.g. "New hire (25% / 50% / 75%)"."""
    return f"{schedule.name} ({ramp_percentages_text(schedule.month_percentages)})"


class RampScheduleForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    percentages = forms.CharField(
        label=_("Percent of the full quota per month"),
        help_text=_("Whole percentages separated by slashes, semicolons, spaces or a comma and a space, e.g. 25/50/75/100."),
    )

    def clean_percentages(self):
        text = self.cleaned_data["percentages"]
        decimal_comma = RAMP_DECIMAL_COMMA.search(text)
        if decimal_comma is not None and decimal_comma.group() == text.strip():
            raise forms.ValidationError(
                _(
                    "%(value)s is read as a number with a decimal comma, but a ramp takes whole "
                    "percentages only. Separate the months with semicolons, slashes, spaces or a comma and a space, "
                    "e.g. 25; 50; 75 or 25/50/75."
                ),
                params={"value": text.strip()},
            )
        if decimal_comma is not None:
            raise forms.ValidationError(
                _(
                    "%(part)s in %(value)s is read as a number with a decimal comma, but a ramp takes whole "
                    "percentages only. Separate the months with semicolons, slashes, spaces or a comma and a space, "
                    "e.g. 25; 50; 75 or 25/50/75."
                ),
                params={"part": decimal_comma.group(), "value": text},
            )
        values = []
        for part in RAMP_SEPARATORS.split(text.replace("%", " ").strip()):
            if not part:
                continue
            try:
                values.append(int(part))
            except ValueError:
                raise forms.ValidationError(
                    _(
                        "%(part)s in %(value)s is not a whole percentage; write whole numbers from 0 to 100 "
                        "separated by slashes, commas or spaces, e.g. 25/50/75/100."
                    ),
                    params={"part": part, "value": text},
                ) from None
        if not values or any(not 0 <= value <= 100 for value in values):
            raise forms.ValidationError(_("Each percentage must lie between 0 and 100, e.g. 25/50/75/100."))
        return values
