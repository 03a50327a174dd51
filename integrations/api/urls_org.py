"""The API token page of an organization, mounted at /o/<org_slug>/."""

from django.urls import path

from integrations.api import views_admin

urlpatterns = [
    path("settings/api-tokens/", views_admin.api_tokens, name="api_tokens"),
    path("settings/api-tokens/<int:token_id>/revoke/", views_admin.api_token_revoke_page, name="api_token_revoke"),
]
