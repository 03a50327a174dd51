"""URL patterns of the REST API, mounted at /api/v1/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from integrations.api import views

urlpatterns = [
    path("pipelines/", views.PipelineListView.as_view(), name="api_pipelines"),
    path("people/", views.PersonListView.as_view(), name="api_people"),
    path("accounts/", views.AccountListView.as_view(), name="api_accounts"),
    path("deals/", views.DealListView.as_view(), name="api_deals"),
    path("deals/<int:deal_id>/", views.DealDetailView.as_view(), name="api_deal"),
    path("stage-changes/", views.StageChangeListView.as_view(), name="api_stage_changes"),
    path("activities/", views.ActivityListView.as_view(), name="api_activities"),
    path("quotas/", views.QuotaListView.as_view(), name="api_quotas"),
    path("kpi-snapshots/", views.KpiSnapshotListView.as_view(), name="api_kpi_snapshots"),
    path("kpi-report/", views.KpiReportView.as_view(), name="api_kpi_report"),
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema"), name="api_docs"),
]
