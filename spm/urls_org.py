"""Organization pages of the spm app, mounted under /o/<org-slug>/."""

from django.urls import path

from spm import views, views_audit, views_privacy

urlpatterns = [
    path("", views.organization_home, name="organization_home"),
    path("audit/", views_audit.audit_log, name="audit_log"),
    path("data-protection/", views_privacy.data_protection, name="data_protection"),
    path("data-protection/people/<int:membership_id>/", views_privacy.personal_data, name="personal_data"),
    path(
        "data-protection/people/<int:membership_id>/export/",
        views_privacy.personal_data_export,
        name="personal_data_export",
    ),
    path(
        "data-protection/people/<int:membership_id>/erase/",
        views_privacy.personal_data_erase,
        name="personal_data_erase",
    ),
]
