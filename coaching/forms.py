"""Forms of the 1:1 pages; choices are limited to what the member may see."""

import datetime as dt

from django import forms
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from coaching.models import NoteVisibility, OneOnOne, OneOnOneStatus
from coaching.selectors import rep_choices_visible
from dashboards.selectors import kpi_periods_available
from dashboards.templatetags.spm_format import period_name
from goals.attainment import organization_today
from goals.selectors import default_goal_period
from spm.date_limits import planning_range, short_date
from spm.fiscal import QUARTER, YEAR, Period, parse_period, period_containing
from spm.ids import IdModelChoiceField
from spm.models import Membership, Organization
from spm.widgets import IsoDateInput, IsoTimeInput

DATE_WIDGET = IsoDateInput()
# Characters of a 1:1 note or a skill assessment's note.
NOTE_MAX_LENGTH = 10000
TIME_WIDGET = IsoTimeInput()


def period_choices(*, organization: Organization, today: dt.date) -> tuple[list[Period], Period]:
    """Return the periods a 1:1 can be about and the default one.

    They are the current and the previous quarter plus every quarter and
    fiscal year with KPI data, newest first. The default is the goal pages'
    (goals.selectors.default_goal_period).
    """
    start_month = organization.fiscal_year_start_month
    current = period_containing(today, QUARTER, start_month)
    previous = period_containing(current.start - dt.timedelta(days=1), QUARTER, start_month)
    with_data = [
        period for period in kpi_periods_available(organization=organization) if period.kind in (QUARTER, YEAR)
    ]
    periods = []
    for period in [current, previous, *with_data]:
        if period not in periods:
            periods.append(period)
    periods.sort(key=lambda period: (period.end, period.kind == QUARTER), reverse=True)

    default = default_goal_period(organization, today)
    if default not in periods:
        periods.append(default)
        periods.sort(key=lambda period: (period.end, period.kind == QUARTER), reverse=True)
    return periods, default


class _ScheduleFields(forms.Form):
    """Date, time and period of a 1:1, shared by the new and the edit form."""

    scheduled_on = forms.DateField(label=_("Date"), widget=DATE_WIDGET)
    scheduled_time = forms.TimeField(label=_("Time"), widget=TIME_WIDGET)
    period = forms.ChoiceField(
        label=_("Period of the numbers"),
        help_text=_("The signals compare the rep's numbers in this period with the team's."),
    )

    def __init__(self, *args, organization: Organization, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.allowed_days = planning_range(today)
        self.allowed_days.limit_widget(self.fields["scheduled_on"])
        periods, default = period_choices(organization=organization, today=today)
        self.fields["period"].choices = [(period.label, period_name(period)) for period in periods]
        self.fields["period"].initial = default.label

    def clean_scheduled_on(self) -> dt.date:
        return self.allowed_days.check(self.cleaned_data["scheduled_on"])

    def clean_period(self) -> Period:
        label = self.cleaned_data["period"]
        return parse_period(label, self.organization.fiscal_year_start_month)

    def scheduled_at(self) -> dt.datetime:
        """The chosen date and time in the organization's time zone, as an aware datetime."""
        day, time = self.cleaned_data["scheduled_on"], self.cleaned_data["scheduled_time"]
        return dt.datetime.combine(day, time, tzinfo=self.organization.tzinfo)


class OneOnOneForm(_ScheduleFields):
    rep = IdModelChoiceField(label=_("Rep"), queryset=Membership.objects.none(), empty_label=_("– choose a rep –"))

    field_order = ["rep", "scheduled_on", "scheduled_time", "period"]

    def __init__(self, *args, membership: Membership, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rep"].queryset = rep_choices_visible(membership=membership)
        self.fields["rep"].label_from_instance = lambda member: member.display_name
        self.fields["rep"].error_messages["invalid_choice"] = _(
            "Pick one of your reps from the list; the chosen person is not one of them."
        )


class OneOnOneEditForm(_ScheduleFields):
    status = forms.ChoiceField(label=_("Status"), choices=OneOnOneStatus.choices)

    def __init__(self, *args, now: dt.datetime | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now or timezone.now()

    def clean(self):
        data = super().clean()
        if data.get("status") == OneOnOneStatus.HELD and data.get("scheduled_on") and data.get("scheduled_time"):
            scheduled_at = self.scheduled_at()
            if scheduled_at > self.now:
                self.add_error(
                    "status",
                    gettext(
                        "A 1:1 on %(date)s at %(time)s has not taken place yet, so it cannot be marked as held. "
                        "Keep the status Scheduled or enter the date on which it was held."
                    )
                    % {"date": short_date(scheduled_at.date()), "time": scheduled_at.strftime("%H:%M")},
                )
        return data

    @classmethod
    def for_instance(
        cls, one_on_one: OneOnOne, *, organization: Organization, today: dt.date, data=None, now: dt.datetime | None = None
    ):
        local = one_on_one.scheduled_at.astimezone(organization.tzinfo)
        initial = {
            "scheduled_on": local.date(),
            "scheduled_time": local.time().replace(second=0, microsecond=0),
            "period": one_on_one.period_label,
            "status": one_on_one.status,
        }
        form = cls(data, organization=organization, today=today, initial=initial, now=now)
        # A 1:1 about an older period keeps its period selectable.
        choices = list(form.fields["period"].choices)
        if one_on_one.period_label not in [label for label, _name in choices]:
            period = parse_period(one_on_one.period_label, organization.fiscal_year_start_month)
            form.fields["period"].choices = [*choices, (period.label, period_name(period))]
        return form


class AgendaItemForm(forms.Form):
    title = forms.CharField(label=_("Topic"), max_length=300)


class AgendaItemEditForm(forms.Form):
    title = forms.CharField(label=_("Topic"), max_length=300)
    is_discussed = forms.BooleanField(label=_("Discussed"), required=False)


class NoteForm(forms.Form):
    text = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 4}), max_length=NOTE_MAX_LENGTH)
    visibility = forms.ChoiceField(
        label=_("Who can read it"),
        choices=NoteVisibility.choices,
        initial=NoteVisibility.PRIVATE,
        widget=forms.RadioSelect,
    )


class NoteDeleteForm(forms.Form):
    """Confirmation of a note's deletion; the box must be ticked, as for deleting a contest."""

    confirm = forms.BooleanField(
        label=_("I understand that the note is deleted for good."),
        error_messages={"required": _("Tick the box to confirm that the note is deleted for good.")},
    )


class ActionItemForm(forms.Form):
    title = forms.CharField(label=_("Action item"), max_length=300)
    owner = forms.TypedChoiceField(
        label=_("Owner"),
        coerce=int,
        error_messages={"invalid_choice": _("The owner of an action item is the rep or the manager of this 1:1.")},
    )
    due_on = forms.DateField(label=_("Due date"), required=False, widget=DATE_WIDGET)

    def __init__(self, *args, one_on_one: OneOnOne, **kwargs):
        super().__init__(*args, **kwargs)
        self.one_on_one = one_on_one
        self.fields["owner"].choices = [
            (one_on_one.rep_id, gettext("%(name)s (rep)") % {"name": one_on_one.rep.display_name}),
            (one_on_one.manager_id, gettext("%(name)s (manager)") % {"name": one_on_one.manager.display_name}),
        ]
        self.fields["owner"].initial = one_on_one.rep_id
        self.due_range = planning_range(organization_today(one_on_one.organization))
        self.due_range.limit_widget(self.fields["due_on"])

    def clean_due_on(self) -> dt.date | None:
        due_on = self.cleaned_data["due_on"]
        if due_on is None:
            return None
        return self.due_range.check(due_on)

    def owner_membership(self) -> Membership:
        if self.cleaned_data["owner"] == self.one_on_one.rep_id:
            return self.one_on_one.rep
        return self.one_on_one.manager
