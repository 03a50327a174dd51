"""Skill rubric and assessments: rubric editing by admins, the self/manager gap, the history chart, permissions.

Hand-made history of the rep (Closing and Discovery of the default rubric):
- manager 2017-03-01: Closing 3, Discovery 2
- self    2017-05-01: Closing 5
- manager 2017-06-01: Closing 4
Latest manager Closing 4, latest self Closing 5: gap +1. Discovery has no self-assessment: no gap.
"""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import translation
from django_scopes import scope, scopes_disabled

from coaching.skills.charts import skill_history_charts
from coaching.skills.models import (
    Assessment,
    AssessmentKind,
    Competency,
    CompetencyLevel,
    Rating,
)
from coaching.skills.selectors import assessment_list, competency_list, skill_gaps
from coaching.skills.services import assessment_create, rubric_load_default
from spm.models import AuditLog, Role
from tests.factories import MembershipFactory, TeamFactory, UserFactory


def url(name, org, **kwargs):
    return reverse(name, kwargs={"org_slug": org.slug, **kwargs})


def competency_post(name_de, name_en, **extra):
    data = {"name_de": name_de, "name_en": name_en, "description_de": "", "description_en": "", "order": "1"}
    for level in range(1, 6):
        data[f"level_{level}_de"] = f"Stufe {level}"
        data[f"level_{level}_en"] = f"Level {level}"
    data.update(extra)
    return data


@pytest.fixture
def rubric(org, admin_member):
    with scope(organization=org):
        rubric_load_default(organization=org, actor=admin_member)
        return {competency.name_en: competency for competency in Competency.objects.all()}


@pytest.fixture
def history(org, rubric, member, manager_member):
    closing, discovery = rubric["Closing"].pk, rubric["Discovery"].pk
    with scope(organization=org):
        assessment_create(
            organization=org,
            assessor=manager_member,
            member=member,
            assessed_on=dt.date(2017, 3, 1),
            levels={closing: 3, discovery: 2},
        )
        assessment_create(
            organization=org, assessor=member, member=member, assessed_on=dt.date(2017, 5, 1), levels={closing: 5}
        )
        assessment_create(
            organization=org, assessor=manager_member, member=member, assessed_on=dt.date(2017, 6, 1), levels={closing: 4}
        )


# --- rubric ---


def test_default_rubric_loads_once(org, admin_member):
    with scope(organization=org):
        first = rubric_load_default(organization=org, actor=admin_member)
        second = rubric_load_default(organization=org, actor=admin_member)

        assert first == 6
        assert second == 0
        assert Competency.objects.count() == 6
        assert CompetencyLevel.objects.count() == 30
        assert AuditLog.objects.filter(action="skills.rubric_default_loaded").count() == 1


def test_default_rubric_button(client, org, admin_member):
    client.force_login(admin_member.user)

    response = client.post(url("skills_rubric_default", org))

    assert response.status_code == 302
    with scope(organization=org):
        assert sorted(Competency.objects.values_list("name_en", flat=True)) == [
            "Closing",
            "Discovery",
            "Negotiation",
            "Objection handling",
            "Presentation",
            "Qualification",
        ]


def test_competency_name_follows_language(org, rubric):
    closing = rubric["Closing"]

    with translation.override("de"):
        assert closing.name == "Abschluss"
    with translation.override("en"):
        assert closing.name == "Closing"


def test_admin_adds_competency_with_levels(client, org, admin_member):
    client.force_login(admin_member.user)

    response = client.post(url("skills_rubric", org), competency_post("Kaltakquise", "Prospecting"))

    assert response.status_code == 302
    with scope(organization=org):
        competency = Competency.objects.get()
        assert competency.name_de == "Kaltakquise"
        assert [level.description_en for level in competency.levels.all()] == [f"Level {n}" for n in range(1, 6)]
        audit = AuditLog.objects.get(action="skills.competency_changed")
        assert audit.before is None
        assert audit.after["name_en"] == "Prospecting"


def test_admin_edits_competency(client, org, admin_member, rubric):
    client.force_login(admin_member.user)
    closing = rubric["Closing"]

    response = client.post(
        url("skills_competency", org, competency_id=closing.pk),
        competency_post("Abschlussstärke", "Closing", level_5_en="Closes every quarter on plan"),
    )

    assert response.status_code == 302
    with scope(organization=org):
        closing.refresh_from_db()
        assert closing.name_de == "Abschlussstärke"
        assert closing.levels.get(level=5).description_en == "Closes every quarter on plan"
        audit = AuditLog.objects.get(action="skills.competency_changed")
        assert audit.before["name_de"] == "Abschluss"
        assert audit.after["name_de"] == "Abschlussstärke"


def test_duplicate_competency_name_rejected(client, org, admin_member, rubric):
    client.force_login(admin_member.user)

    response = client.post(url("skills_rubric", org), competency_post("Neu", "Closing"))

    assert response.status_code == 400
    assert "English name Closing is already used by another competency" in response.content.decode()
    with scope(organization=org):
        assert Competency.objects.count() == 6


def test_admin_deletes_competency_with_ratings(client, org, admin_member, rubric, history):
    client.force_login(admin_member.user)

    response = client.post(url("skills_competency_delete", org, competency_id=rubric["Closing"].pk), {"confirm": "on"})

    assert response.status_code == 302
    with scope(organization=org):
        assert not Competency.objects.filter(name_en="Closing").exists()
        assert Rating.objects.count() == 1
        assert AuditLog.objects.filter(action="skills.competency_deleted").count() == 1


def test_competency_delete_needs_ticked_box(client, org, admin_member, rubric, history):
    client.force_login(admin_member.user)

    response = client.post(url("skills_competency_delete", org, competency_id=rubric["Closing"].pk), {}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    text = response.content.decode()
    assert "Tick the box to confirm the deletion." in text
    assert "I understand that the competency is deleted for good, together with 3 ratings given on it." in text
    with scope(organization=org):
        assert Competency.objects.filter(name_en="Closing").exists()
        assert Rating.objects.count() == 4
        assert not AuditLog.objects.filter(action="skills.competency_deleted").exists()


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Closing", "I understand that the competency is deleted for good, together with 3 ratings given on it."),
        ("Discovery", "I understand that the competency is deleted for good, together with 1 rating given on it."),
        ("Negotiation", "I understand that the competency is deleted for good. No rating was given on it."),
    ],
)
def test_competency_page_states_rating_count(client, org, admin_member, rubric, history, name, label):
    client.force_login(admin_member.user)

    response = client.get(url("skills_competency", org, competency_id=rubric[name].pk), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert label in response.content.decode()


def test_manager_cannot_open_rubric(client, org, manager_member):
    client.force_login(manager_member.user)

    assert client.get(url("skills_rubric", org)).status_code == 404
    assert client.post(url("skills_rubric_default", org)).status_code == 404


# --- gap and history ---


def test_gap_is_self_minus_latest_manager(org, rubric, history, member):
    with scope(organization=org):
        gaps = {row.competency.name_en: row for row in skill_gaps(competencies=competency_list(), assessments=assessment_list(member=member))}

    assert gaps["Closing"].manager_level == 4
    assert gaps["Closing"].manager_on == dt.date(2017, 6, 1)
    assert gaps["Closing"].self_level == 5
    assert gaps["Closing"].gap == 1
    assert gaps["Discovery"].manager_level == 2
    assert gaps["Discovery"].self_level is None
    assert gaps["Discovery"].gap is None
    assert gaps["Negotiation"].gap is None


def test_member_page_shows_gap(client, org, rubric, history, member):
    client.force_login(member.user)

    response = client.get(url("skills_member", org, member_id=member.pk))

    assert response.status_code == 200
    text = response.content.decode()
    closing_row = text.split(f'data-competency="{rubric["Closing"].pk}"')[1].split("</tr>")[0]
    assert '<td class="num" data-gap>+1</td>' in closing_row
    discovery_row = text.split(f'data-competency="{rubric["Discovery"].pk}"')[1].split("</tr>")[0]
    assert "Needs both a manager rating and a self-assessment" in discovery_row


def test_history_chart_series(org, rubric, history, member):
    with scope(organization=org):
        charts = skill_history_charts(competencies=competency_list(), assessments=assessment_list(member=member))

    by_name = {competency.name_en: figure for competency, _chart_id, figure in charts}
    assert set(by_name) == {"Closing", "Discovery"}
    closing = {trace["name"]: trace for trace in by_name["Closing"]["data"]}
    assert closing["Manager assessment"]["x"] == ["2017-03-01", "2017-06-01"]
    assert closing["Manager assessment"]["y"] == [3, 4]
    assert closing["Self-assessment"]["x"] == ["2017-05-01"]
    assert closing["Self-assessment"]["y"] == [5]
    # A single assessment still gets a readable date axis: 15 days on each side.
    assert by_name["Discovery"]["layout"]["xaxis"]["range"] == ["2017-02-14", "2017-03-16"]


# --- permissions ---


def test_rep_self_assesses(client, org, rubric, member):
    client.force_login(member.user)

    response = client.post(
        url("skills_assess", org, member_id=member.pk),
        {"assessed_on": "2017-07-01", f"competency_{rubric['Closing'].pk}": "4", "note": ""},
    )

    assert response.status_code == 302
    with scope(organization=org):
        assessment = Assessment.objects.get()
        assert assessment.kind == AssessmentKind.SELF
        assert assessment.assessor == member
        assert [(rating.competency.name_en, rating.level) for rating in assessment.ratings.all()] == [("Closing", 4)]


def test_assessment_needs_one_rating(client, org, rubric, member):
    client.force_login(member.user)

    response = client.post(url("skills_assess", org, member_id=member.pk), {"assessed_on": "2017-07-01"})

    assert response.status_code == 400
    assert "Rate at least one competency." in response.content.decode()


def test_manager_assesses_report(client, org, rubric, member, manager_member):
    client.force_login(manager_member.user)

    response = client.post(
        url("skills_assess", org, member_id=member.pk),
        {"assessed_on": "2017-07-01", f"competency_{rubric['Discovery'].pk}": "2"},
    )

    assert response.status_code == 302
    with scope(organization=org):
        assessment = Assessment.objects.get()
        assert assessment.kind == AssessmentKind.MANAGER
        assert assessment.member == member


def test_rep_cannot_see_or_assess_other_rep(client, org, rubric, history, member, other_rep):
    client.force_login(other_rep.user)

    assert client.get(url("skills_member", org, member_id=member.pk)).status_code == 404
    assert client.get(url("skills_assess", org, member_id=member.pk)).status_code == 404
    response = client.post(
        url("skills_assess", org, member_id=member.pk),
        {"assessed_on": "2017-07-01", f"competency_{rubric['Closing'].pk}": "1"},
    )
    assert response.status_code == 404
    with scope(organization=org):
        assert Assessment.objects.count() == 3


def test_manager_of_other_team_gets_404(client, org, rubric, history, member):
    with scopes_disabled():
        south = TeamFactory(organization=org, name="South")
        outside = MembershipFactory(organization=org, role=Role.MANAGER, team=south, user=UserFactory())
        south.manager = outside
        south.save(update_fields=["manager"])
    client.force_login(outside.user)

    assert client.get(url("skills_member", org, member_id=member.pk)).status_code == 404
    assert client.get(url("skills_assess", org, member_id=member.pk)).status_code == 404


def test_other_organization_gets_404(client, org, rubric, member, other_org_admin):
    client.force_login(other_org_admin.user)

    assert client.get(url("skills_member", org, member_id=member.pk)).status_code == 404
    assert client.get(reverse("skills_member", kwargs={"org_slug": "globex", "member_id": member.pk})).status_code == 404


def test_service_rejects_rep_assessing_other(org, rubric, member, other_rep):
    from django.core.exceptions import PermissionDenied

    with scope(organization=org), pytest.raises(PermissionDenied):
        assessment_create(
            organization=org, assessor=other_rep, member=member, assessed_on=dt.date(2017, 7, 1), levels={rubric["Closing"].pk: 1}
        )


def test_rep_home_lists_only_self(client, org, member, other_rep):
    client.force_login(member.user)

    response = client.get(url("skills_home", org))

    assert response.status_code == 200
    text = response.content.decode()
    assert url("skills_member", org, member_id=member.pk) in text
    assert url("skills_member", org, member_id=other_rep.pk) not in text


def test_other_tenant_sees_no_rubric_rows(org, other_org, rubric, history):
    with scope(organization=other_org):
        assert Competency.objects.count() == 0
        assert Assessment.objects.count() == 0
        assert Rating.objects.count() == 0


def test_other_tenant_admin_cannot_edit_competency(client, org, rubric, other_org_admin):
    client.force_login(other_org_admin.user)
    closing = rubric["Closing"]

    edit = client.post(
        reverse("skills_competency", kwargs={"org_slug": "globex", "competency_id": closing.pk}),
        competency_post("Geändert", "Changed"),
    )
    delete = client.post(reverse("skills_competency_delete", kwargs={"org_slug": "globex", "competency_id": closing.pk}))

    assert edit.status_code == 404
    assert delete.status_code == 404
    with scope(organization=org):
        closing.refresh_from_db()
        assert closing.name_en == "Closing"


def test_history_reads_take_fixed_queries(org, rubric, history, member, django_assert_num_queries):
    with scope(organization=org):
        # Competencies with their levels: 2 queries. Assessments with assessor, then ratings: 2 queries.
        with django_assert_num_queries(2):
            competencies = competency_list()
        with django_assert_num_queries(2):
            assessments = assessment_list(member=member)
        with django_assert_num_queries(0):
            skill_gaps(competencies=competencies, assessments=assessments)
            skill_history_charts(competencies=competencies, assessments=assessments)


# --- success messages name the competency in the page's language ----------------------------------


def success_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.mark.parametrize(
    ("language", "message"),
    [("de", "Kompetenz Kaltakquise hinzugefügt."), ("en", "Competency Prospecting added.")],
)
def test_added_message_names_page_language(client, org, admin_member, language, message):
    client.force_login(admin_member.user)

    response = client.post(
        url("skills_rubric", org), competency_post("Kaltakquise", "Prospecting"), HTTP_ACCEPT_LANGUAGE=language, follow=True
    )

    assert response.status_code == 200
    assert success_messages(response) == [message]


@pytest.mark.parametrize(
    ("language", "message"),
    [("de", "Kompetenz Abschlussstärke gespeichert."), ("en", "Competency Closing deals saved.")],
)
def test_saved_message_names_new_name(client, org, admin_member, rubric, language, message):
    client.force_login(admin_member.user)
    closing = rubric["Closing"]

    response = client.post(
        url("skills_competency", org, competency_id=closing.pk),
        competency_post("Abschlussstärke", "Closing deals"),
        HTTP_ACCEPT_LANGUAGE=language,
        follow=True,
    )

    assert response.status_code == 200
    assert success_messages(response) == [message]
