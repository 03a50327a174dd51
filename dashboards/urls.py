from django.urls import path

from dashboards import views, views_pipeline

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("me/", views.me, name="me"),
    path("pipeline/", views_pipeline.pipeline, name="pipeline"),
    path("pipeline/activities/", views_pipeline.activities, name="pipeline_activities"),
    path("pipeline/export/", views_pipeline.pipeline_export, name="pipeline_export"),
    path("settings/stages/", views_pipeline.stage_settings, name="stage_settings"),
]
