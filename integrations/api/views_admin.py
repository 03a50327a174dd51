"""The admin page that creates and revokes an organization's API tokens."""

from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from integrations.api.forms import ApiTokenForm
from integrations.api.models import ApiToken
from integrations.api.services import api_token_create, api_token_revoke
from spm.security import admin_required

NEW_TOKEN_SESSION_KEY = "api_new_token"


@admin_required
@require_http_methods(["GET", "POST"])
def api_tokens(request, org_slug):
    """List the tokens and create one; a new token's text is shown once, on the page the creation redirects to.

    The redirect keeps a reload from creating a second token. The text waits in the
    server-side session until that page pops it.
    """
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        _token, plain = api_token_create(
            organization=request.organization,
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            actor=request.user,
        )
        request.session[NEW_TOKEN_SESSION_KEY] = plain
        return redirect("api_tokens", org_slug=org_slug)

    new_token = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    response = render(
        request,
        "api/tokens.html",
        {"form": form, "tokens": ApiToken.objects.select_related("created_by"), "new_token": new_token},
    )
    # The page may contain a secret: no cache may keep it.
    response["Cache-Control"] = "no-store"
    return response


@admin_required
def api_token_revoke_page(request, org_slug, token_id):
    # The lookup comes before the method check, so another organization's token is 404 for every method.
    token = get_object_or_404(ApiToken, pk=token_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    api_token_revoke(token=token, actor=request.user)
    messages.success(request, _("Token “%(name)s” revoked; requests with it are rejected from now on.") % {"name": token.name})
    return redirect("api_tokens", org_slug=org_slug)
