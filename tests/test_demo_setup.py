"""`manage.py demo_setup`: the three demo logins after an import."""

import io

import pytest
from django.core.management import CommandError, call_command
from django_scopes import scopes_disabled

from spm.models import AuditLog, Membership, Role, User
from tests.factories import (
    DealFactory,
    MembershipFactory,
    PipelineFactory,
    StageFactory,
    UserFactory,
)

PASSWORD = "lunch-in-leipzig-42"



@pytest.fixture
def rep_with_deal(org, member):
    with scopes_disabled():
        stage = StageFactory(pipeline=PipelineFactory(organization=org))
        DealFactory(owner=member, stage=stage)
    return member


def run_demo_setup(**overrides) -> str:
    options = {
        "org": "acme",
        "manager_email": "manager@acme.example",
        "rep_email": "rep@acme.example",
        "password": PASSWORD,
        **overrides,
    }
    output = io.StringIO()
    call_command("demo_setup", stdout=output, **options)
    return output.getvalue()


def test_demo_setup_creates_admin_and_sets_passwords(rep_with_deal, manager_member, org_in_english):
    output = run_demo_setup()

    admin = User.objects.get(email="admin@acme.example")
    with scopes_disabled():
        membership = Membership.objects.get(user=admin)
        audit = list(AuditLog.objects.filter(action="membership.created").values_list("object_id", "after"))
    assert membership.role == Role.ADMIN
    assert membership.organization.slug == "acme"
    assert audit == [(str(membership.pk), {"user_id": admin.pk, "role": "admin"})]
    for email in ("admin@acme.example", "manager@acme.example", "rep@acme.example"):
        assert User.objects.get(email=email).check_password(PASSWORD), email
    assert output.splitlines() == [
        f"Demo logins for organization acme (password for all: {PASSWORD}):",
        "  Admin      admin@acme.example                   Demo Admin",
        f"  Manager    manager@acme.example                 {manager_member.user.name}",
        f"  Sales rep  rep@acme.example                     {rep_with_deal.user.name}",
    ]


def test_demo_setup_prints_logins_in_german(rep_with_deal, manager_member):
    output = run_demo_setup()

    assert output.splitlines() == [
        f"Demo-Logins für die Organisation acme (Passwort für alle: {PASSWORD}):",
        "  Admin                    admin@acme.example                   Demo Admin",
        f"  Manager/in               manager@acme.example                 {manager_member.user.name}",
        f"  Vertriebsmitarbeiter/in  rep@acme.example                     {rep_with_deal.user.name}",
    ]


def test_demo_setup_quotas_without_won_deals(rep_with_deal, manager_member, org_in_english):
    output = run_demo_setup(quotas=2017)

    assert output.splitlines()[0] == "No won deals in FY 2017, so no quotas were set."


def test_demo_setup_twice_changes_nothing_more(rep_with_deal, manager_member):
    run_demo_setup()
    run_demo_setup()

    with scopes_disabled():
        assert Membership.objects.filter(user__email="admin@acme.example").count() == 1
        assert AuditLog.objects.count() == 1
    assert User.objects.filter(email="admin@acme.example").count() == 1


def test_demo_setup_promotes_existing_member_to_admin(rep_with_deal, manager_member, org):
    with scopes_disabled():
        existing = MembershipFactory(organization=org, role=Role.REP, user=UserFactory(email="admin@acme.example"))

    run_demo_setup()

    with scopes_disabled():
        existing.refresh_from_db()
        change = AuditLog.objects.get(action="membership.role_changed")
    assert existing.role == Role.ADMIN
    assert change.before == {"role": "rep"}
    assert change.after == {"role": "admin"}


def test_demo_setup_rejects_rep_without_deals(member, org_in_english):
    with pytest.raises(CommandError, match="owns no deals"):
        run_demo_setup()


def test_demo_setup_rejects_rep_of_other_manager(rep_with_deal, manager_member, org, org_in_english):
    with scopes_disabled():
        outsider = MembershipFactory(organization=org, role=Role.REP, user=UserFactory(email="outsider@acme.example"))
        DealFactory(owner=outsider, stage=StageFactory(pipeline=PipelineFactory(organization=org, name="Other")))

    with pytest.raises(CommandError, match="does not report to manager@acme.example"):
        run_demo_setup(rep_email="outsider@acme.example")


def test_demo_setup_rejects_wrong_role(rep_with_deal, manager_member, org_in_english):
    with pytest.raises(CommandError) as raised:
        run_demo_setup(manager_email="rep@acme.example")

    assert str(raised.value) == "rep@acme.example has the role Sales rep; pick a member with the role Manager."


def test_demo_setup_rejects_wrong_role_in_german(rep_with_deal, manager_member):
    with pytest.raises(CommandError) as raised:
        run_demo_setup(manager_email="rep@acme.example")

    assert str(raised.value) == (
        "rep@acme.example hat die Rolle Vertriebsmitarbeiter/in; wählen Sie ein Mitglied mit der Rolle Manager/in."
    )


def test_demo_setup_rejects_unknown_organization(db):
    with pytest.raises(CommandError, match="Organization acme not found"):
        run_demo_setup()


def test_demo_setup_rejects_weak_password(rep_with_deal, manager_member, org_in_english):
    with pytest.raises(CommandError, match="demo password was rejected"):
        run_demo_setup(password="12345")
