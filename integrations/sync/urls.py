from django.urls import path

from integrations.sync import views

urlpatterns = [
    path("integrations/", views.integration_list, name="integration_list"),
    path("integrations/<int:pk>/", views.integration_detail, name="integration_detail"),
    path("integrations/<int:pk>/sync/", views.integration_sync, name="integration_sync"),
    path("integrations/<int:pk>/pipelines/", views.integration_pipelines_refresh, name="integration_pipelines_refresh"),
    path("integrations/<int:pk>/delete/", views.integration_delete, name="integration_delete"),
    path("integrations/<int:pk>/runs/<int:run_pk>/", views.integration_run, name="integration_run"),
]
