"""Who may use each URL pattern, and which objects its parameters name; read by tests/test_access_control.py.

Every named URL pattern of the project must have an entry here, or the access-control test
fails and names the pattern. Add one line per new URL:

- a URL under /o/<org_slug>/: `URL_ACCESS["name"] = OrgUrl(roles=..., params={"pk": "deal"})`.
  `roles` are the roles that may use it. `params` maps each other URL parameter to an object
  kind of `OBJECT_KINDS`. Add a kind there when the parameter names a new model.
- a URL outside organizations (accounts, language switch): `GlobalUrl(anonymous=LOGIN or PUBLIC)`.
- a REST API URL under /api/v1/ that authenticates by API token: `TokenUrl(params={...})`, with
  made-up parameter values. Without a token, and with only a login session, it must answer 401.

The test then checks, for GET and every unsafe method (PUT, PATCH and DELETE may also answer
405, which views send before any lookup), that anonymous users are sent to the
login page, members of another organization get 404, roles outside `roles` get 404, and
objects of another organization or outside the member's role get 404 (or `denied_status`).
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spm.models import Membership

ADMIN, MANAGER, REP = "admin", "manager", "rep"
ALL_ROLES = frozenset({ADMIN, MANAGER, REP})
MANAGERS_AND_ADMINS = frozenset({ADMIN, MANAGER})
ADMINS = frozenset({ADMIN})

LOGIN = "login"  # anonymous users are redirected to the login page
PUBLIC = "public"  # reachable without login (login, password reset, language switch)


@dataclass(frozen=True)
class ObjectKind:
    """How to create an object that a URL parameter names.

    `create(owner)` returns an object belonging to the membership `owner` in `owner`'s
    organization; the test calls it inside that organization's scope. With
    `owner_scoped=True` a member sees the object only when they may see `owner`
    (reps: themselves; managers: their reports; admins: everyone). Otherwise every member
    of the organization who may use the URL sees it, and only another organization's
    object must be hidden.
    """

    create: Callable[[Membership], Any]
    owner_scoped: bool = True
    # The URL parameter value of the object, by default its primary key.
    value: Callable[[Any], Any] = lambda instance: instance.pk


@dataclass(frozen=True)
class OrgUrl:
    roles: frozenset[str]
    params: dict[str, str] = field(default_factory=dict)
    # Status of a GET by an allowed role for an object it may see (405 for POST-only views).
    get_status: int = 200
    # Status for a denied combination; 403 only where the object's existence is not secret.
    denied_status: int = 404


@dataclass(frozen=True)
class GlobalUrl:
    anonymous: str
    # Values of URL parameters, e.g. a made-up reset key; they only need to match the pattern.
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenUrl:
    # Values of URL parameters; the request is rejected before any lookup.
    params: dict[str, Any] = field(default_factory=dict)


# --- object kinds ----------------------------------------------------------------------------


def _deal(owner: Membership):
    from pipelines.models import Pipeline
    from tests.factories import DealFactory, PipelineFactory, StageFactory

    pipeline = Pipeline.objects.first() or PipelineFactory(organization=owner.organization)
    return DealFactory(owner=owner, stage=StageFactory(pipeline=pipeline))


def _import_run(owner: Membership):
    from pipelines.models import ImportRun

    return ImportRun.objects.create(
        organization=owner.organization, source="generic", created_by=owner.user, directory="imports/test", language="en"
    )


def _contest(owner: Membership):
    from goals.models import Contest

    return Contest.objects.create(
        organization=owner.organization,
        name="Q1 push",
        metric="won_revenue",
        starts_on=dt.date(2017, 1, 1),
        ends_on=dt.date(2017, 3, 31),
        created_by=owner,
    )


# --- skills and development plans (coaching.skills) ---


def _competency(owner: Membership):
    from coaching.skills.models import Competency

    return Competency.objects.create(organization=owner.organization, name_de="Abschluss", name_en="Closing")


def _development_plan(owner: Membership):
    from coaching.skills.models import DevelopmentPlan

    return DevelopmentPlan.objects.create(organization=owner.organization, member=owner, title="Better closing")


def _development_goal(owner: Membership):
    from coaching.skills.models import DevelopmentGoal

    return DevelopmentGoal.objects.create(
        organization=owner.organization,
        plan=_development_plan(owner),
        indicator="win_rate",
        baseline_period_label="2017-Q2",
        period_label="2017-Q3",
        target_value="0.5",
    )


def _training_item(owner: Membership):
    from coaching.skills.models import TrainingItem

    plan = _development_plan(owner)
    return TrainingItem.objects.create(
        organization=owner.organization, plan=plan, title="Negotiation course", due_on=dt.date(2017, 9, 30)
    )


def _api_token(owner: Membership):
    from integrations.api.services import api_token_create

    token, _plain = api_token_create(organization=owner.organization, name="BI export", scope="read", actor=owner.user)
    return token


# webhooks and activity capture: both kinds belong to the organization, not to a member.
def _webhook(owner: Membership):
    from integrations.webhooks.models import WebhookSubscription

    return WebhookSubscription.objects.create(
        organization=owner.organization, url="https://hooks.example/spm", events=["deal.won"], secret="whsec_test"
    )


def _account_domain(owner: Membership):
    from integrations.capture.models import AccountDomain
    from pipelines.models import Account

    account = Account.objects.create(organization=owner.organization, name="Kunde AG", external_id=f"kunde-{owner.pk}")
    return AccountDomain.objects.create(organization=owner.organization, account=account, domain=f"kunde{owner.pk}.example")


# coaching: a 1:1 of the rep `owner`, and an agenda item, note and action item of that 1:1.
def _one_on_one(owner: Membership):
    """Return the 1:1 of rep `owner`, creating it with the rep's manager (or another manager or admin) as host."""
    from coaching.models import OneOnOne
    from spm.models import Role

    existing = OneOnOne.objects.filter(rep=owner).first()
    if existing is not None:
        return existing
    host = owner.manager or (
        Membership.objects.filter(role__in=(Role.MANAGER, Role.ADMIN)).exclude(pk=owner.pk).first() or owner
    )
    return OneOnOne.objects.create(
        organization=owner.organization,
        rep=owner,
        manager=host,
        scheduled_at=dt.datetime(2017, 10, 5, 9, 0, tzinfo=dt.timezone.utc),
        period_label="2017-Q4",
    )


def _agenda_item(owner: Membership):
    from coaching.models import AgendaItem

    return AgendaItem.objects.create(
        organization=owner.organization, one_on_one=_one_on_one(owner), position=1, title="Pricing"
    )


def _coaching_note(owner: Membership):
    # Shared, so every member who may open the 1:1 reaches it; tests/test_coaching_one_on_ones.py covers private notes.
    from coaching.models import CoachingNote, NoteVisibility

    one_on_one = _one_on_one(owner)
    return CoachingNote.objects.create(
        organization=owner.organization,
        one_on_one=one_on_one,
        author=one_on_one.manager,
        text="Good quarter.",
        visibility=NoteVisibility.SHARED,
    )


def _action_item(owner: Membership):
    from coaching.models import ActionItem

    return ActionItem.objects.create(
        organization=owner.organization, one_on_one=_one_on_one(owner), owner=owner, title="Call back the account"
    )


# CRM sync: a connection belongs to the organization; a run to the organization's one HubSpot connection.
def _crm_connection(owner: Membership):
    from integrations.sync.models import CrmConnection

    connection, _created = CrmConnection.objects.get_or_create(
        organization=owner.organization,
        provider="hubspot",
        defaults={"base_url": "https://api.hubapi.com", "access_token": "pat-test-token"},
    )
    return connection


def _crm_sync_run(owner: Membership):
    from integrations.sync.models import CrmSyncRun

    return CrmSyncRun.objects.create(organization=owner.organization, connection=_crm_connection(owner), trigger="manual")


OBJECT_KINDS: dict[str, ObjectKind] = {
    "api_token": ObjectKind(create=_api_token, owner_scoped=False),
    "crm_connection": ObjectKind(create=_crm_connection, owner_scoped=False),
    "crm_sync_run": ObjectKind(create=_crm_sync_run, owner_scoped=False),
    "webhook": ObjectKind(create=_webhook, owner_scoped=False),
    "account_domain": ObjectKind(create=_account_domain, owner_scoped=False),
    "deal": ObjectKind(create=_deal),
    # A person: the membership itself is the owner.
    "membership": ObjectKind(create=lambda owner: owner),
    "import_run": ObjectKind(create=_import_run, owner_scoped=False),
    "contest": ObjectKind(create=_contest, owner_scoped=False),
    # skills: the rubric belongs to the organization; a plan and its items to the plan's member.
    "competency": ObjectKind(create=_competency, owner_scoped=False),
    "development_plan": ObjectKind(create=_development_plan),
    "development_goal": ObjectKind(create=_development_goal),
    "training_item": ObjectKind(create=_training_item),
    # coaching: the owner is the 1:1's rep; the other three kinds belong to that rep's 1:1.
    "one_on_one": ObjectKind(create=_one_on_one),
    "agenda_item": ObjectKind(create=_agenda_item),
    "coaching_note": ObjectKind(create=_coaching_note),
    "action_item": ObjectKind(create=_action_item),
}


# --- URL patterns ----------------------------------------------------------------------------

URL_ACCESS: dict[str, OrgUrl | GlobalUrl | TokenUrl] = {
    # spm
    "home": GlobalUrl(anonymous=LOGIN),
    "set_language": GlobalUrl(anonymous=PUBLIC),
    # Redirects every member to the start page of their role.
    "organization_home": OrgUrl(roles=ALL_ROLES, get_status=302),
    "audit_log": OrgUrl(roles=ADMINS),
    "data_protection": OrgUrl(roles=ADMINS),
    "personal_data": OrgUrl(roles=ADMINS, params={"membership_id": "membership"}),
    "personal_data_export": OrgUrl(roles=ADMINS, params={"membership_id": "membership"}),
    "personal_data_erase": OrgUrl(roles=ADMINS, params={"membership_id": "membership"}, get_status=405),
    # dashboards
    "dashboard": OrgUrl(roles=MANAGERS_AND_ADMINS),
    "my_attainment": OrgUrl(roles=ALL_ROLES),
    "rep_scorecard": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"member_id": "membership"}),
    "leaderboard": OrgUrl(roles=ALL_ROLES),
    "contest_list": OrgUrl(roles=ALL_ROLES),
    "contest_new": OrgUrl(roles=MANAGERS_AND_ADMINS),
    "contest_detail": OrgUrl(roles=ALL_ROLES, params={"contest_id": "contest"}),
    "contest_delete": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"contest_id": "contest"}, get_status=405),
    # goals admin: settings, quota editor, teams, territories, people.
    "goals_settings": OrgUrl(roles=ADMINS),
    "goals_quota_editor": OrgUrl(roles=ADMINS),
    "goals_quota_cell": OrgUrl(roles=ADMINS, get_status=405),
    "goals_quota_paste": OrgUrl(roles=ADMINS, get_status=405),
    "goals_quota_upload": OrgUrl(roles=ADMINS, get_status=405),
    "goals_quota_template_create": OrgUrl(roles=ADMINS, get_status=405),
    "goals_quota_template_apply": OrgUrl(roles=ADMINS, get_status=405),
    "goals_structure": OrgUrl(roles=ADMINS),
    "goals_people": OrgUrl(roles=ADMINS),
    "goals_person": OrgUrl(roles=ADMINS, params={"membership_id": "membership"}),
    "privacy_scorecard_views": OrgUrl(roles=ADMINS),
    "privacy_metrics": OrgUrl(roles=ALL_ROLES),
    "me": OrgUrl(roles=ALL_ROLES),
    # Reps see the pipeline and activity pages for their own deals; see dashboards.views_pipeline.
    "pipeline": OrgUrl(roles=ALL_ROLES),
    "pipeline_activities": OrgUrl(roles=ALL_ROLES),
    "pipeline_export": OrgUrl(roles=ALL_ROLES),
    "stage_settings": OrgUrl(roles=ADMINS),
    # pipelines
    "deal_list": OrgUrl(roles=ALL_ROLES),
    "deal_detail": OrgUrl(roles=ALL_ROLES, params={"pk": "deal"}),
    "import_list": OrgUrl(roles=ADMINS),
    "exchange_rates_upload": OrgUrl(roles=ADMINS, get_status=405),
    "exchange_rates_rejected": OrgUrl(roles=ADMINS),
    "import_detail": OrgUrl(roles=ADMINS, params={"pk": "import_run"}),
    # 400: a run that was only uploaded has no columns to map yet; the lookup itself succeeded.
    "import_mapping": OrgUrl(roles=ADMINS, params={"pk": "import_run"}, get_status=400),
    "import_progress": OrgUrl(roles=ADMINS, params={"pk": "import_run"}),
    "import_rejected": OrgUrl(roles=ADMINS, params={"pk": "import_run"}),
    # win probability: the model's admin page (pipelines.views_scoring)
    "win_model": OrgUrl(roles=ADMINS),
    # skills: rubric (admins), assessments and development plans (coaching.skills)
    "skills_home": OrgUrl(roles=ALL_ROLES),
    "skills_rubric": OrgUrl(roles=ADMINS),
    "skills_rubric_default": OrgUrl(roles=ADMINS, get_status=405),
    "skills_competency": OrgUrl(roles=ADMINS, params={"competency_id": "competency"}),
    "skills_competency_delete": OrgUrl(roles=ADMINS, params={"competency_id": "competency"}, get_status=405),
    # Reps open their own page and assess themselves; managers assess the members they lead.
    "skills_member": OrgUrl(roles=ALL_ROLES, params={"member_id": "membership"}),
    "skills_assess": OrgUrl(roles=ALL_ROLES, params={"member_id": "membership"}),
    "plan_new": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"member_id": "membership"}),
    "plan_list": OrgUrl(roles=ALL_ROLES),
    "plan_detail": OrgUrl(roles=ALL_ROLES, params={"plan_id": "development_plan"}),
    "plan_goal_add": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"plan_id": "development_plan"}, get_status=405),
    "plan_item_add": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"plan_id": "development_plan"}, get_status=405),
    "plan_item_done": OrgUrl(roles=ALL_ROLES, params={"item_id": "training_item"}, get_status=405),
    "plan_edit": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"plan_id": "development_plan"}),
    "plan_delete": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"plan_id": "development_plan"}, get_status=405),
    "plan_goal_edit": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"goal_id": "development_goal"}),
    "plan_goal_delete": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"goal_id": "development_goal"}, get_status=405),
    "plan_item_edit": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"item_id": "training_item"}),
    "plan_item_delete": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"item_id": "training_item"}, get_status=405),
    # REST API: token admin page, and /api/v1/ (token only; the schema and its docs are public)
    "api_tokens": OrgUrl(roles=ADMINS),
    "api_token_revoke": OrgUrl(roles=ADMINS, params={"token_id": "api_token"}, get_status=405),
    "api_pipelines": TokenUrl(),
    "api_people": TokenUrl(),
    "api_accounts": TokenUrl(),
    "api_deals": TokenUrl(),
    "api_deal": TokenUrl(params={"deal_id": 1}),
    "api_stage_changes": TokenUrl(),
    "api_activities": TokenUrl(),
    "api_quotas": TokenUrl(),
    "api_kpi_snapshots": TokenUrl(),
    "api_kpi_report": TokenUrl(),
    "api_schema": GlobalUrl(anonymous=PUBLIC),
    "api_docs": GlobalUrl(anonymous=PUBLIC),
    # Any other path under /api/: the API's JSON 404 for everyone.
    "api_not_found": GlobalUrl(anonymous=PUBLIC, params={"unmatched_path": "v1/no-such-endpoint/"}),
    # forecasting: the forecast page, submissions, per-deal categories, admin settings
    "forecast": OrgUrl(roles=ALL_ROLES),
    "forecast_member": OrgUrl(roles=ALL_ROLES, params={"member_id": "membership"}),
    "forecast_submit": OrgUrl(roles=ALL_ROLES, get_status=405),
    "forecast_deal_category": OrgUrl(roles=ALL_ROLES, params={"deal_id": "deal"}, get_status=405),
    "forecast_settings": OrgUrl(roles=ADMINS),
    # webhooks (admins) and activity capture: a member's own calendar page, the admins' mailbox and domains
    "webhook_list": OrgUrl(roles=ADMINS),
    "webhook_detail": OrgUrl(roles=ADMINS, params={"pk": "webhook"}),
    "webhook_secret_rotate": OrgUrl(roles=ADMINS, params={"pk": "webhook"}, get_status=405),
    "webhook_toggle": OrgUrl(roles=ADMINS, params={"pk": "webhook"}, get_status=405),
    "webhook_delete": OrgUrl(roles=ADMINS, params={"pk": "webhook"}, get_status=405),
    "calendar_capture": OrgUrl(roles=ALL_ROLES),
    "calendar_upload": OrgUrl(roles=ALL_ROLES, get_status=405),
    "calendar_feed_delete": OrgUrl(roles=ALL_ROLES, get_status=405),
    "mailbox_settings": OrgUrl(roles=ADMINS),
    "mailbox_poll_now": OrgUrl(roles=ADMINS, get_status=405),
    "account_domain_add": OrgUrl(roles=ADMINS, get_status=405),
    "account_domain_delete": OrgUrl(roles=ADMINS, params={"pk": "account_domain"}, get_status=405),
    # coaching: 1:1s (reps read their own; the 1:1's manager and admins change them)
    "coaching_home": OrgUrl(roles=ALL_ROLES),
    "coaching_one_on_one_new": OrgUrl(roles=MANAGERS_AND_ADMINS),
    "coaching_one_on_one": OrgUrl(roles=ALL_ROLES, params={"one_on_one_id": "one_on_one"}),
    "coaching_one_on_one_edit": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"one_on_one_id": "one_on_one"}),
    "coaching_agenda_add": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"one_on_one_id": "one_on_one"}, get_status=405),
    "coaching_agenda_refresh": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"one_on_one_id": "one_on_one"}, get_status=405),
    "coaching_agenda_item": OrgUrl(
        roles=MANAGERS_AND_ADMINS, params={"one_on_one_id": "one_on_one", "item_id": "agenda_item"}, get_status=405
    ),
    "coaching_note_add": OrgUrl(roles=MANAGERS_AND_ADMINS, params={"one_on_one_id": "one_on_one"}, get_status=405),
    "coaching_note": OrgUrl(
        roles=MANAGERS_AND_ADMINS, params={"one_on_one_id": "one_on_one", "note_id": "coaching_note"}, get_status=405
    ),
    "coaching_action_item_add": OrgUrl(
        roles=MANAGERS_AND_ADMINS, params={"one_on_one_id": "one_on_one"}, get_status=405
    ),
    "coaching_action_item": OrgUrl(
        roles=ALL_ROLES, params={"one_on_one_id": "one_on_one", "action_item_id": "action_item"}, get_status=405
    ),
    # CRM sync (integrations.sync): admins only
    "integration_list": OrgUrl(roles=ADMINS),
    "integration_detail": OrgUrl(roles=ADMINS, params={"pk": "crm_connection"}),
    "integration_sync": OrgUrl(roles=ADMINS, params={"pk": "crm_connection"}, get_status=405),
    "integration_pipelines_refresh": OrgUrl(roles=ADMINS, params={"pk": "crm_connection"}, get_status=405),
    "integration_delete": OrgUrl(roles=ADMINS, params={"pk": "crm_connection"}, get_status=405),
    "integration_run": OrgUrl(roles=ADMINS, params={"pk": "crm_connection", "run_pk": "crm_sync_run"}),
    # allauth: account pages
    "account_login": GlobalUrl(anonymous=PUBLIC),
    "account_logout": GlobalUrl(anonymous=PUBLIC),
    "account_inactive": GlobalUrl(anonymous=PUBLIC),
    "account_signup": GlobalUrl(anonymous=PUBLIC),
    "account_reauthenticate": GlobalUrl(anonymous=LOGIN),
    "account_request_reauthentication_code": GlobalUrl(anonymous=PUBLIC),
    "account_confirm_reauthentication_code": GlobalUrl(anonymous=PUBLIC),
    "account_email": GlobalUrl(anonymous=LOGIN),
    "account_email_verification_sent": GlobalUrl(anonymous=PUBLIC),
    "account_change_password": GlobalUrl(anonymous=LOGIN),
    "account_set_password": GlobalUrl(anonymous=LOGIN),
    "account_reset_password": GlobalUrl(anonymous=PUBLIC),
    "account_confirm_login_code": GlobalUrl(anonymous=PUBLIC),
    "account_confirm_email": GlobalUrl(anonymous=PUBLIC, params={"key": "no-such-key"}),
    "account_reset_password_from_key_done": GlobalUrl(anonymous=PUBLIC),
    "account_reset_password_from_key": GlobalUrl(anonymous=PUBLIC, params={"uidb36": "zz", "key": "no-such-key"}),
    "account_reset_password_done": GlobalUrl(anonymous=PUBLIC),
    # allauth: two-factor authentication
    "mfa_index": GlobalUrl(anonymous=LOGIN),
    "mfa_authenticate": GlobalUrl(anonymous=PUBLIC),
    "mfa_reauthenticate": GlobalUrl(anonymous=LOGIN),
    "mfa_activate_totp": GlobalUrl(anonymous=LOGIN),
    "mfa_deactivate_totp": GlobalUrl(anonymous=LOGIN),
    "mfa_view_recovery_codes": GlobalUrl(anonymous=LOGIN),
    "mfa_generate_recovery_codes": GlobalUrl(anonymous=LOGIN),
    "mfa_download_recovery_codes": GlobalUrl(anonymous=LOGIN),
}
