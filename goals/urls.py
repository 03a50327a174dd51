from django.urls import path

from goals import views_admin

urlpatterns = [
    # Admin: settings, quotas, teams, territories, people.
    path("settings/", views_admin.organization_settings, name="goals_settings"),
    path("quotas/", views_admin.quota_editor, name="goals_quota_editor"),
    path("quotas/cell/", views_admin.quota_cell, name="goals_quota_cell"),
    path("quotas/paste/", views_admin.quota_paste, name="goals_quota_paste"),
    path("quotas/upload/", views_admin.quota_upload, name="goals_quota_upload"),
    path("quotas/templates/", views_admin.quota_template_create, name="goals_quota_template_create"),
    path("quotas/templates/apply/", views_admin.quota_template_apply, name="goals_quota_template_apply"),
    path("structure/", views_admin.structure, name="goals_structure"),
    path("people/", views_admin.people, name="goals_people"),
    path("people/<int:membership_id>/", views_admin.person, name="goals_person"),
]
