from django.urls import path

from pipelines import views, views_imports, views_scoring

urlpatterns = [
    path("deals/", views.deal_list, name="deal_list"),
    path("deals/<int:pk>/", views.deal_detail, name="deal_detail"),
    path("imports/", views_imports.import_list, name="import_list"),
    path("imports/rates/", views_imports.exchange_rates_upload, name="exchange_rates_upload"),
    path("imports/rates/rejected.csv", views_imports.exchange_rates_rejected_download, name="exchange_rates_rejected"),
    path("imports/<int:pk>/", views_imports.import_detail, name="import_detail"),
    path("imports/<int:pk>/mapping/", views_imports.import_mapping, name="import_mapping"),
    path("imports/<int:pk>/progress/", views_imports.import_progress, name="import_progress"),
    path("imports/<int:pk>/rejected.csv", views_imports.import_rejected_download, name="import_rejected"),
    path("settings/win-model/", views_scoring.win_model, name="win_model"),
]
