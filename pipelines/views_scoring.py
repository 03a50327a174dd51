"""The admin page of the win-probability model: status, training with progress, held-out metrics, calibration.

Managers and reps get 404 like any page they may not see.
"""


from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods

from pipelines.scoring import services
from pipelines.scoring.selectors import win_model_page
from spm.security import admin_required


@admin_required
@require_http_methods(["GET", "POST"])
def win_model(request, org_slug):
    """GET: the page, or only its status fragment for htmx polling. POST: start a training run."""
    if request.method == "POST":
        services.win_model_enqueue(organization=request.organization, actor=request.user)
        return redirect("win_model", org_slug=org_slug)

    template_name = "pipelines/win_model.html"
    if request.htmx and not request.htmx.history_restore_request:
        template_name += "#win-model-status"
    context = {
        "page": win_model_page(organization=request.organization),
        "min_closed_deals": services.MIN_CLOSED_DEALS,
        "min_per_class": services.MIN_DEALS_PER_CLASS,
    }
    response = render(request, template_name, context)
    patch_vary_headers(response, ("HX-Request",))
    return response
