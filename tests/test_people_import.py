"""People upload: matching by e-mail then name, German files, assignments, bad rows, the command."""

import datetime as dt

import pytest
from django.core.management import call_command
from django_scopes import scope, scopes_disabled

from goals.imports import people_import
from goals.models import Assignment, Team, Territory
from spm.models import AuditLog, Membership, Role

TODAY = dt.date(2025, 6, 1)


def upload(org, text, encoding="utf-8", file_name="people.csv"):
    with scope(organization=org):
        return people_import(organization=org, actor=None, data=text.encode(encoding), file_name=file_name, today=TODAY)


def test_new_people_created_with_team_and_dates(org):
    text = (
        "name;email;role;team;territory;active_from;active_to\r\n"
        "Jürgen Bär;juergen@acme.example;rep;Süd;Bayern;15.02.2025;\r\n"
        "Eva Lang;eva@acme.example;manager;Süd;;2024-01-01;31.12.2025\r\n"
    )

    result = upload(org, text, encoding="cp1252")

    assert result.created == 2
    assert result.rejected == 0
    with scopes_disabled():
        juergen = Membership.objects.select_related("user", "team", "territory").get(user__email="juergen@acme.example")
        eva = Membership.objects.get(user__email="eva@acme.example")
        assignment = Assignment.objects.get(membership=juergen)
        assert juergen.user.name == "Jürgen Bär"
        assert juergen.role == Role.REP
        assert juergen.team.name == "Süd"
        assert juergen.territory.name == "Bayern"
        assert juergen.active_from == dt.date(2025, 2, 15)
        assert assignment.valid_from == dt.date(2025, 2, 15)
        assert assignment.valid_to is None
        assert eva.role == Role.MANAGER
        assert eva.active_to == dt.date(2025, 12, 31)
        assert Team.objects.filter(organization=org).count() == 1
        assert Territory.objects.filter(organization=org).count() == 1


def test_second_run_changes_nothing(org):
    text = "name,email,role,team,territory,active_from,active_to\nEva Lang,eva@acme.example,rep,North,,2025-01-01,\n"
    upload(org, text)
    with scopes_disabled():
        audit_rows = AuditLog.objects.filter(organization=org).count()

    result = upload(org, text)

    assert result.created == 0
    assert result.updated == 0
    assert result.unchanged == 1
    with scopes_disabled():
        assert AuditLog.objects.filter(organization=org).count() == audit_rows


def test_existing_member_matched_by_name_moves_team(org, member, team):
    with scopes_disabled():
        member.user.name = "Rita Rep"
        member.user.save()
    text = "name,email,team\nRita Rep,,South\n"

    result = upload(org, text)

    assert result.updated == 1
    with scopes_disabled():
        member.refresh_from_db()
        history = list(Assignment.objects.filter(membership=member).order_by("valid_from").values_list("team__name", "valid_from", "valid_to"))
    assert member.team.name == "South"
    # The member had no history: the old team is kept until the day before the move.
    assert history == [("North", dt.date(1900, 1, 1), TODAY), ("South", TODAY, None)]


def test_existing_user_of_other_org_rejected(org, other_org_admin):
    """A user of another organization is not attached (see test_import_foreign_accounts.py for the reason)."""
    result = upload(org, "name,email\nGlobex Admin,admin@globex.example\n")

    assert result.created == 0
    assert [(error.line, error.column, error.value) for error in result.errors] == [(2, "email", "admin@globex.example")]
    with scopes_disabled():
        assert not Membership.objects.filter(organization=org, user=other_org_admin.user).exists()


def test_bad_rows_reported(org):
    text = (
        "name,email,role,active_from,active_to\n"
        "Ann,ann@acme.example,boss,,\n"
        "Ben,ben-at-acme,rep,,\n"
        "Cid,cid@acme.example,rep,31.02.2025,\n"
        "Dee,dee@acme.example,rep,2025-05-01,2025-04-01\n"
        "Nobody,,rep,,\n"
        "Eve,eve@acme.example,rep,2025-01-01,\n"
    )

    result = upload(org, text)

    assert result.created == 1
    assert [(error.line, error.column, error.value) for error in result.errors] == [
        (2, "role", "boss"),
        (3, "email", "ben-at-acme"),
        (4, "active_from", "31.02.2025"),
        (5, "active_to", "2025-04-01"),
        (6, "email", ""),
    ]


# The command prints in the organization's language; English keeps the summary readable here.
@pytest.mark.usefixtures("org_in_english")
def test_import_people_command(org, tmp_path, capsys):
    path = tmp_path / "people.csv"
    path.write_bytes("\ufeffname;email;role\nEva Lang;eva@acme.example;rep\n".encode())

    call_command("import_people", "--org", "acme", str(path))

    assert "created 1, updated 0, unchanged 0, rejected 0" in capsys.readouterr().out


def test_import_people_command_in_german(org, tmp_path, capsys):
    path = tmp_path / "people.csv"
    path.write_bytes("name;email;role\nEva Lang;eva@acme.example;rep\nBen Berg;ben-at-acme;rep\n".encode())

    with pytest.raises(SystemExit):
        call_command("import_people", "--org", "acme", str(path))

    assert capsys.readouterr().out == "angelegt 1, aktualisiert 0, unverändert 0, abgelehnt 1\n"


@pytest.mark.parametrize(
    ("language", "summary", "hidden"),
    [
        ("en", "created 1,234, updated 56,789, unchanged 0, rejected 1,235\n", "… and 1,185 more rejected rows."),
        ("de", "angelegt 1.234, aktualisiert 56.789, unverändert 0, abgelehnt 1.235\n", "… und 1.185 weitere abgelehnte Zeilen."),
    ],
)
def test_upload_result_print_groups_digits(language, summary, hidden):
    import io
    from types import SimpleNamespace

    from django.core.management.base import OutputWrapper
    from django.utils import translation

    from goals.management.commands._upload import result_print

    errors = [f"people.csv line {line}, column email, value 'x': invalid e-mail address" for line in range(2, 1237)]
    result = SimpleNamespace(created=1234, updated=56789, unchanged=0, rejected=len(errors), errors=errors)
    stdout, stderr = io.StringIO(), io.StringIO()
    command = SimpleNamespace(stdout=OutputWrapper(stdout), stderr=OutputWrapper(stderr))

    with translation.override(language):
        result_print(command, result)

    assert stdout.getvalue() == summary
    printed_errors = stderr.getvalue().splitlines()
    assert len(printed_errors) == 51
    assert printed_errors[-1] == hidden


def test_import_people_command_unknown_org(db, tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "people.csv"
    path.write_text("name,email\n", encoding="utf-8")

    with pytest.raises(CommandError, match="Organization nope not found"):
        call_command("import_people", "--org", "nope", str(path))
