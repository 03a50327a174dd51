from django.urls import include, path, re_path

from spm import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("allauth.urls")),
    path("i18n/language/", views.set_language, name="set_language"),
    path("o/<slug:org_slug>/", include("dashboards.urls")),
    path("o/<slug:org_slug>/", include("pipelines.urls")),
    path("o/<slug:org_slug>/", include("spm.urls_org")),
    path("o/<slug:org_slug>/", include("goals.urls")),
    path("o/<slug:org_slug>/", include("coaching.urls")),
    path("o/<slug:org_slug>/", include("coaching.skills.urls")),
    path("o/<slug:org_slug>/", include("integrations.webhooks.urls")),
    path("o/<slug:org_slug>/", include("integrations.capture.urls")),
    path("o/<slug:org_slug>/", include("integrations.sync.urls")),
    path("o/<slug:org_slug>/", include("integrations.api.urls_org")),
    path("api/v1/", include("integrations.api.urls")),
    # Listed last, so it matches only paths under /api/ that no API pattern matches. It returns the
    # API's JSON 404 also with DEBUG on, when Django shows its technical page instead of handler404.
    re_path(r"^api/(?P<unmatched_path>.*)$", views.api_path_not_found, name="api_not_found"),
]

# The API's clients parse JSON, also for an address that matches no URL (/api/v1/deals/abc/).
handler404 = "spm.views.page_not_found"
