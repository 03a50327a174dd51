"""URL patterns of the skills pages under /o/<org_slug>/skills/."""

from django.urls import path

from coaching.skills import views

urlpatterns = [
    path("skills/", views.skills_home, name="skills_home"),
    path("skills/rubric/", views.rubric, name="skills_rubric"),
    path("skills/rubric/default/", views.rubric_default, name="skills_rubric_default"),
    path("skills/rubric/<int:competency_id>/", views.competency_edit, name="skills_competency"),
    path("skills/rubric/<int:competency_id>/delete/", views.competency_delete, name="skills_competency_delete"),
    path("skills/people/<int:member_id>/", views.member_skills, name="skills_member"),
    path("skills/people/<int:member_id>/assess/", views.assess, name="skills_assess"),
    path("skills/people/<int:member_id>/plans/new/", views.plan_new, name="plan_new"),
    path("skills/plans/", views.plan_list, name="plan_list"),
    path("skills/plans/<int:plan_id>/", views.plan_detail, name="plan_detail"),
    path("skills/plans/<int:plan_id>/goals/", views.plan_goal_add, name="plan_goal_add"),
    path("skills/plans/<int:plan_id>/items/", views.plan_item_add, name="plan_item_add"),
    path("skills/plans/<int:plan_id>/edit/", views.plan_edit, name="plan_edit"),
    path("skills/plans/<int:plan_id>/delete/", views.plan_delete, name="plan_delete"),
    path("skills/goals/<int:goal_id>/edit/", views.plan_goal_edit, name="plan_goal_edit"),
    path("skills/goals/<int:goal_id>/delete/", views.plan_goal_delete, name="plan_goal_delete"),
    path("skills/items/<int:item_id>/done/", views.plan_item_done, name="plan_item_done"),
    path("skills/items/<int:item_id>/edit/", views.plan_item_edit, name="plan_item_edit"),
    path("skills/items/<int:item_id>/delete/", views.plan_item_delete, name="plan_item_delete"),
]
