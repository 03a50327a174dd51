from django.urls import path

from goals import views_admin, views_contests, views_forecast, views_leaderboard, views_privacy, views_scorecards

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
    # Attainment scorecards, leaderboard, contests and works-council privacy pages.
    path("me/attainment/", views_scorecards.my_attainment, name="my_attainment"),
    path("reps/<int:member_id>/", views_scorecards.rep_scorecard, name="rep_scorecard"),
    path("leaderboard/", views_leaderboard.leaderboard, name="leaderboard"),
    path("contests/", views_contests.contests, name="contest_list"),
    path("contests/new/", views_contests.contest_new, name="contest_new"),
    path("contests/<int:contest_id>/", views_contests.contest_detail, name="contest_detail"),
    path("contests/<int:contest_id>/delete/", views_contests.contest_delete_view, name="contest_delete"),
    path("privacy/views/", views_privacy.scorecard_views, name="privacy_scorecard_views"),
    path("privacy/metrics/", views_privacy.personal_metrics, name="privacy_metrics"),
]

# Forecasting: the forecast page, submissions, per-deal categories and the admin's settings.
urlpatterns += [
    path("forecast/", views_forecast.forecast, name="forecast"),
    path("forecast/people/<int:member_id>/", views_forecast.forecast_member, name="forecast_member"),
    path("forecast/submit/", views_forecast.forecast_submit, name="forecast_submit"),
    path("forecast/deals/<int:deal_id>/category/", views_forecast.forecast_deal_category, name="forecast_deal_category"),
    path("forecast/settings/", views_forecast.forecast_settings, name="forecast_settings"),
]
