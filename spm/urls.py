from django.urls import include, path

from spm import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("allauth.urls")),
    path("i18n/language/", views.set_language, name="set_language"),
    path("o/<slug:org_slug>/", include("dashboards.urls")),
    path("o/<slug:org_slug>/", include("pipelines.urls")),
    path("o/<slug:org_slug>/", include("spm.urls_org")),
    path("o/<slug:org_slug>/", include("goals.urls")),
]
