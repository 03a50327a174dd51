"""Pages of activity capture: a member's own calendar (feed and upload) and the admins' mailbox and account domains."""

from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from integrations.capture import ics, services
from integrations.capture.forms import AccountDomainForm, CalendarFeedForm, CalendarUploadForm, MailboxForm
from integrations.capture.models import AccountDomain, CalendarFeed, Mailbox
from spm.security import admin_required


def _result_message(request, result: services.CaptureResult) -> None:
    counts = result.as_dict()
    messages.success(
        request,
        ngettext(
            "%(created)s meeting added, %(updated)s updated, %(unchanged)s unchanged; %(unmatched)s without a known account.",
            "%(created)s meetings added, %(updated)s updated, %(unchanged)s unchanged; %(unmatched)s without a known account.",
            counts["created"],
        )
        % counts,
    )
    for skipped in result.skipped:
        messages.warning(request, skipped)


@require_http_methods(["GET", "POST"])
def calendar_capture(request, org_slug):
    # Every page here acts on the requesting member's own feed only, so no id appears in the URL.
    member = request.membership
    feed = CalendarFeed.objects.filter(member=member).first()
    feed_form = CalendarFeedForm(request.POST or None, initial={"url": feed.url if feed else ""})
    if request.method == "POST" and feed_form.is_valid():
        feed = services.calendar_feed_save(member=member, url=feed_form.cleaned_data["url"])
        result = services.calendar_feed_poll(feed=feed)
        if result is None:
            messages.error(request, _("The feed was saved, but reading it failed: %(error)s") % {"error": feed.last_error})
        else:
            _result_message(request, result)
        return redirect("calendar_capture", org_slug=org_slug)
    context = {"feed": feed, "feed_form": feed_form, "upload_form": CalendarUploadForm()}
    return render(request, "capture/calendar.html", context)


@require_POST
def calendar_upload(request, org_slug):
    form = CalendarUploadForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            result = services.calendar_file_capture(member=request.membership, data=upload.read(), require_events=True)
        except ics.CalendarFileError as error:
            messages.error(request, _("%(name)s: %(error)s") % {"name": upload.name, "error": error})
        else:
            _result_message(request, result)
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    return redirect("calendar_capture", org_slug=org_slug)


@require_POST
def calendar_feed_delete(request, org_slug):
    CalendarFeed.objects.filter(member=request.membership).delete()
    messages.success(request, _("Calendar feed removed. Meetings captured from it stay."))
    return redirect("calendar_capture", org_slug=org_slug)


@admin_required
@require_http_methods(["GET", "POST"])
def mailbox_settings(request, org_slug):
    mailbox = Mailbox.objects.first()
    initial = {}
    if mailbox is not None:
        initial = {name: getattr(mailbox, name) for name in ("host", "port", "use_ssl", "username", "folder", "is_active")}
    form = MailboxForm(request.POST or None, initial=initial, has_password=bool(mailbox and mailbox.password))
    if request.method == "POST" and form.is_valid():
        services.mailbox_save(organization=request.organization, actor=request.user, values=dict(form.cleaned_data))
        messages.success(request, _("Mailbox saved. It is read within five minutes, or now with “Read now”."))
        return redirect("mailbox_settings", org_slug=org_slug)
    context = {
        "mailbox": mailbox,
        "form": form,
        "domain_form": AccountDomainForm(),
        "domains": AccountDomain.objects.select_related("account"),
    }
    return render(request, "capture/mailbox.html", context, status=400 if form.errors else 200)


@admin_required
@require_POST
def mailbox_poll_now(request, org_slug):
    mailbox = get_object_or_404(Mailbox)
    result = services.mailbox_poll(mailbox=mailbox)
    if result is None:
        messages.error(request, _("Reading the mailbox failed: %(error)s") % {"error": mailbox.last_error})
    else:
        messages.success(
            request,
            _("%(created)s e-mails added, %(unchanged)s already known; %(unmatched)s without a known account, %(without_member)s without a member.")
            % result.as_dict(),
        )
    return redirect("mailbox_settings", org_slug=org_slug)


@admin_required
@require_POST
def account_domain_add(request, org_slug):
    form = AccountDomainForm(request.POST)
    if form.is_valid():
        services.account_domain_add(organization=request.organization, actor=request.user, **form.cleaned_data)
        messages.success(request, _("Domain %(domain)s added.") % {"domain": form.cleaned_data["domain"]})
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    return redirect("mailbox_settings", org_slug=org_slug)


@admin_required
def account_domain_delete(request, org_slug, pk):
    row = get_object_or_404(AccountDomain, pk=pk)
    # The lookup comes before the method check, so another organization's id is a 404 for every method.
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    services.account_domain_delete(row=row, actor=request.user)
    messages.success(request, _("Domain %(domain)s removed.") % {"domain": row.domain})
    return redirect("mailbox_settings", org_slug=org_slug)


