"""1:1 meetings of a manager with a rep: agenda, notes and action items."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from coaching.signal_labels import metric_label
from spm.models import Membership, Organization


class OneOnOneStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    HELD = "held", _("Held")
    CANCELLED = "cancelled", _("Cancelled")


class OneOnOne(models.Model):
    """A 1:1 meeting of a manager (or admin) with one rep, about the rep's numbers in one fiscal period."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    rep = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="one_on_ones", verbose_name=_("rep")
    )
    manager = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="hosted_one_on_ones", verbose_name=_("manager")
    )
    scheduled_at = models.DateTimeField(_("date and time"))
    period_label = models.CharField(
        _("period"), max_length=32, help_text=_("Fiscal period whose numbers the signals compare, e.g. 2017-Q4.")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=OneOnOneStatus.choices, default=OneOnOneStatus.SCHEDULED
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("1:1")
        verbose_name_plural = _("1:1s")
        ordering = ["-scheduled_at", "-id"]
        indexes = [
            # A rep's 1:1s newest first: the list page and "the 1:1s before this one" for carried-over items.
            models.Index(fields=["organization", "rep", "scheduled_at"], name="coaching_oneonone_rep"),
            # The 1:1s a manager hosts, newest first.
            models.Index(fields=["organization", "manager", "scheduled_at"], name="coaching_oneonone_manager"),
        ]

    def __str__(self):
        return f"{self.rep} · {self.scheduled_at:%Y-%m-%d}"


class ActionItem(models.Model):
    """Something the rep or the manager agreed to do in a 1:1; open items carry over until done."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    one_on_one = models.ForeignKey(
        OneOnOne, on_delete=models.CASCADE, related_name="action_items", verbose_name=_("agreed in")
    )
    owner = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="coaching_action_items", verbose_name=_("owner")
    )
    title = models.CharField(_("action item"), max_length=300)
    due_on = models.DateField(_("due date"), null=True, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("done by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("action item")
        verbose_name_plural = _("action items")
        ordering = ["due_on", "id"]
        indexes = [
            # A member's open action items on the coaching page.
            models.Index(fields=["organization", "owner", "done_at"], name="coaching_actionitem_owner"),
        ]

    def __str__(self):
        return self.title

    @property
    def is_done(self) -> bool:
        return self.done_at is not None


class AgendaItemKind(models.TextChoices):
    SIGNAL = "signal", _("Signal")
    ACTION_ITEM = "action_item", _("Open action item")
    TOPIC = "topic", _("Topic")


class AgendaItem(models.Model):
    """One point of a 1:1's agenda: generated from a signal or an open action item, or added by hand.

    An item generated from a signal leaves `title` empty and stores the metric and the
    names in its label in `signal`, so each reader sees the label in their own language
    (`display_title`). Editing the text stores it in `title`, as typed.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    one_on_one = models.ForeignKey(
        OneOnOne, on_delete=models.CASCADE, related_name="agenda_items", verbose_name=_("1:1")
    )
    position = models.PositiveIntegerField(_("position"))
    kind = models.CharField(_("kind"), max_length=16, choices=AgendaItemKind.choices, default=AgendaItemKind.TOPIC)
    title = models.CharField(_("topic"), max_length=300, blank=True)
    # The signal as it was when the agenda was generated: metric, label parameters, values, median,
    # deal ids (coaching.signals.Signal.as_dict without the label text).
    signal = models.JSONField(_("signal"), null=True, blank=True)
    action_item = models.ForeignKey(
        ActionItem,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="agenda_items",
        verbose_name=_("action item"),
    )
    is_discussed = models.BooleanField(_("discussed"), default=False)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("agenda item")
        verbose_name_plural = _("agenda items")
        ordering = ["position", "id"]

    def __str__(self):
        return self.display_title

    @property
    def display_title(self) -> str:
        """The topic as typed, or the label of the item's signal in the active language.

        Items generated before labels were stored as parameters have the label
        text in `title`, in the language of the person who scheduled the 1:1.
        """
        if self.title or not self.signal or "label_params" not in self.signal:
            return self.title
        return metric_label(self.signal.get("metric", ""), self.signal["label_params"])

    @property
    def signal_code(self) -> str:
        return (self.signal or {}).get("code", "")


class NoteVisibility(models.TextChoices):
    PRIVATE = "private", _("Private: only I can read it")
    SHARED = "shared", _("Shared with the rep")


class CoachingNote(models.Model):
    """A note taken in a 1:1. A private note is readable by its author only; a shared one also by the rep."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    one_on_one = models.ForeignKey(OneOnOne, on_delete=models.CASCADE, related_name="notes", verbose_name=_("1:1"))
    author = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="coaching_notes", verbose_name=_("author")
    )
    text = models.TextField(_("note"))
    visibility = models.CharField(
        _("visibility"), max_length=16, choices=NoteVisibility.choices, default=NoteVisibility.PRIVATE
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("coaching note")
        verbose_name_plural = _("coaching notes")
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.get_visibility_display()} #{self.pk}"

    @property
    def is_shared(self) -> bool:
        return self.visibility == NoteVisibility.SHARED
