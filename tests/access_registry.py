"""Who may use each URL pattern, and which objects its parameters name; read by tests/test_access_control.py.

Every named URL pattern of the project must have an entry here, or the access-control test
fails and names the pattern. Add one line per new URL:

- a URL under /o/<org_slug>/: `URL_ACCESS["name"] = OrgUrl(roles=..., params={"pk": "deal"})`.
  `roles` are the roles that may use it. `params` maps each other URL parameter to an object
  kind of `OBJECT_KINDS`. Add a kind there when the parameter names a new model.
- a URL outside organizations (accounts, language switch): `GlobalUrl(anonymous=LOGIN or PUBLIC)`.

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


def _training_item(owner: Membership):
    from coaching.skills.models import TrainingItem

    plan = _development_plan(owner)
    return TrainingItem.objects.create(
        organization=owner.organization, plan=plan, title="Negotiation course", due_on=dt.date(2017, 9, 30)
    )


OBJECT_KINDS: dict[str, ObjectKind] = {
    "deal": ObjectKind(create=_deal),
    # A person: the membership itself is the owner.
    "membership": ObjectKind(create=lambda owner: owner),
    "import_run": ObjectKind(create=_import_run, owner_scoped=False),
    "contest": ObjectKind(create=_contest, owner_scoped=False),
    # skills: the rubric belongs to the organization; a plan and its items to the plan's member.
    "competency": ObjectKind(create=_competency, owner_scoped=False),
    "development_plan": ObjectKind(create=_development_plan),
    "training_item": ObjectKind(create=_training_item),
}


# --- URL patterns ----------------------------------------------------------------------------

URL_ACCESS: dict[str, OrgUrl | GlobalUrl] = {
    # spm
    "home": GlobalUrl(anonymous=LOGIN),
    "set_language": GlobalUrl(anonymous=PUBLIC),
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
