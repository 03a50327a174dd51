"""1:1 pages, mounted under /o/<org-slug>/."""

from django.urls import path

from coaching import views

urlpatterns = [
    path("coaching/", views.coaching_home, name="coaching_home"),
    path("coaching/1on1/new/", views.one_on_one_new, name="coaching_one_on_one_new"),
    path("coaching/1on1/<int:one_on_one_id>/", views.one_on_one_detail, name="coaching_one_on_one"),
    path("coaching/1on1/<int:one_on_one_id>/edit/", views.one_on_one_edit, name="coaching_one_on_one_edit"),
    path("coaching/1on1/<int:one_on_one_id>/agenda/", views.agenda_add, name="coaching_agenda_add"),
    path("coaching/1on1/<int:one_on_one_id>/agenda/refresh/", views.agenda_refresh, name="coaching_agenda_refresh"),
    path("coaching/1on1/<int:one_on_one_id>/agenda/<int:item_id>/", views.agenda_item, name="coaching_agenda_item"),
    path("coaching/1on1/<int:one_on_one_id>/notes/", views.note_add, name="coaching_note_add"),
    path("coaching/1on1/<int:one_on_one_id>/notes/<int:note_id>/", views.note, name="coaching_note"),
    path("coaching/1on1/<int:one_on_one_id>/action-items/", views.action_item_add, name="coaching_action_item_add"),
    path(
        "coaching/1on1/<int:one_on_one_id>/action-items/<int:action_item_id>/",
        views.action_item,
        name="coaching_action_item",
    ),
]
