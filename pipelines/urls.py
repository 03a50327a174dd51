from django.urls import path

from pipelines import views

urlpatterns = [
    path("deals/", views.deal_list, name="deal_list"),
    path("deals/<int:pk>/", views.deal_detail, name="deal_detail"),
]
