"""Activity capture pages, mounted under /o/<org-slug>/."""

from django.urls import path

from integrations.capture import views

urlpatterns = [
    path("calendar/", views.calendar_capture, name="calendar_capture"),
    path("calendar/upload/", views.calendar_upload, name="calendar_upload"),
    path("calendar/feed/delete/", views.calendar_feed_delete, name="calendar_feed_delete"),
    path("email-capture/", views.mailbox_settings, name="mailbox_settings"),
    path("email-capture/read-now/", views.mailbox_poll_now, name="mailbox_poll_now"),
    path("email-capture/domains/", views.account_domain_add, name="account_domain_add"),
    path("email-capture/domains/<int:pk>/delete/", views.account_domain_delete, name="account_domain_delete"),
]
