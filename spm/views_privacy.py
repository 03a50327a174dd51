"""Data protection pages (admins only): security settings, a person's data export, pseudonymization."""

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spm import audit, privacy
from spm.accounts import has_totp
from spm.exports import Column, Table, csv_response, xlsx_response
from spm.models import Membership, Organization
from spm.security import admin_required

# Values of the personal data export's ?format= parameter.
EXPORT_FORMATS = ("json", "csv")


class SecuritySettingsForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["requires_mfa", "activity_retention_days", "audit_retention_days"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_requires_mfa(self):
        requires_mfa = self.cleaned_data["requires_mfa"]
        # The duty sends every member without an authenticator app to its setup, this admin included,
        # so an admin without one would lose the pages of the organization, this one among them.
        if requires_mfa and not has_totp(self.user):
            raise ValidationError(
                _(
                    "Set up an authenticator app for your own account first (account menu, "
                    "Two-factor authentication), otherwise this setting locks you out of the organization."
                )
            )
        return requires_mfa


class EraseConfirmForm(forms.Form):
    confirm = forms.BooleanField(
        label=gettext_lazy("I understand that the person's name and e-mail address are replaced for good."),
        required=True,
    )


def _person_get(membership_id: int) -> Membership:
    # The scope limits the lookup to the current organization, so another tenant's id is a 404.
    return get_object_or_404(Membership.objects.select_related("user", "team"), pk=membership_id)


@admin_required
def data_protection(request, org_slug):
    organization = request.organization
    if request.method == "POST":
        before = {name: getattr(organization, name) for name in SecuritySettingsForm.Meta.fields}
        form = SecuritySettingsForm(request.POST, instance=organization, user=request.user)
        if form.is_valid():
            form.save()
            audit.audit_record(
                organization=organization,
                actor=request.user,
                action="organization.security_settings_changed",
                object_type="organization",
                object_id=organization.pk,
                before=before,
                after={key: form.cleaned_data[key] for key in before},
            )
            messages.success(request, _("The settings were saved."))
            return redirect("data_protection", org_slug=organization.slug)
    else:
        form = SecuritySettingsForm(instance=organization, user=request.user)
    people = Membership.objects.select_related("user").order_by("user__name", "user__email")
    status = 400 if form.is_bound and not form.is_valid() else 200
    return render(request, "spm/privacy_overview.html", {"form": form, "people": people}, status=status)


@admin_required
def personal_data(request, org_slug, membership_id):
    person = _person_get(membership_id)
    return render(request, "spm/privacy_person.html", {"person": person, "erase_form": EraseConfirmForm()})


@admin_required
def personal_data_export(request, org_slug, membership_id):
    person = _person_get(membership_id)
    export_format = request.GET.get("format", "json")
    if export_format not in EXPORT_FORMATS:
        context = {"person": person, "export_format": export_format, "formats": ", ".join(EXPORT_FORMATS)}
        return render(request, "spm/privacy_export_format_error.html", context, status=400)

    export = privacy.person_data_export(membership=person, actor=request.user)
    file_name = f"personal-data-{request.organization.slug}-{person.pk}"
    if export_format == "csv":
        return _tabular_response(privacy.person_data_rows(export), file_name=file_name, file_format="csv")
    response = HttpResponse(json.dumps(export, indent=2, ensure_ascii=False), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{file_name}.json"'
    return response


@admin_required
def personal_data_erase(request, org_slug, membership_id):
    # The lookup comes before the method check, so an id of another organization is a 404 for every method.
    person = _person_get(membership_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = EraseConfirmForm(request.POST)
    if not form.is_valid():
        return render(request, "spm/privacy_person.html", {"person": person, "erase_form": form}, status=400)
    if person.user_id == request.user.pk:
        form.add_error(None, _("You cannot erase yourself; ask another admin."))
        return render(request, "spm/privacy_person.html", {"person": person, "erase_form": form}, status=400)
    try:
        pseudonym = privacy.person_pseudonymize(membership=person, actor=request.user)
    except ValidationError as error:
        form.add_error(None, error)
        return render(request, "spm/privacy_person.html", {"person": person, "erase_form": form}, status=400)
    messages.success(request, _("The person was replaced by the pseudonym %(pseudonym)s.") % {"pseudonym": pseudonym})
    return redirect("personal_data", org_slug=request.organization.slug, membership_id=person.pk)


def _tabular_response(rows: list[list], *, file_name: str, file_format: str):
    """Return `rows` (header first) as a CSV or XLSX download; spm.exports escapes formula-like text."""
    header, *body = rows
    table = Table(name=file_name, columns=[Column(str(title)) for title in header], rows=body)
    return xlsx_response(table) if file_format == "xlsx" else csv_response(table)
