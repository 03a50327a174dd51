"""Rejected forecast submissions: the page comes back with status 400, the entered values and each error at its field."""

from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from dashboards.templatetags.spm_format import period_name
from goals.forecasts import rollup
from goals.models import ForecastSubmission
from spm.fiscal import period_containing

SUBMIT_URL = "/o/acme/forecast/submit/"


class ElementAttributes(HTMLParser):
    """Collect the attributes of the start tag whose id is `element_id`."""

    def __init__(self, element_id: str):
        super().__init__()
        self.element_id = element_id
        self.attributes: dict[str, str | None] | None = None

    def handle_starttag(self, tag, attrs):
        if dict(attrs).get("id") == self.element_id:
            self.attributes = dict(attrs)


def attributes_of(body: str, element_id: str) -> dict[str, str | None]:
    parser = ElementAttributes(element_id)
    parser.feed(body)
    assert parser.attributes is not None, f"no element with id {element_id!r}"
    return parser.attributes


def current_quarter(org):
    return period_containing(timezone.localtime(timezone.now(), org.tzinfo).date(), "quarter", 1)


@pytest.fixture
def people(org, manager_member, member, other_rep):
    """The manager and two reports with fixed names, and the manager's earlier forecast of this quarter."""
    with scopes_disabled():
        for membership, name in ((manager_member, "Mara Manager"), (member, "Rita Rep"), (other_rep, "Otto Other")):
            membership.user.name = name
            membership.user.save(update_fields=["name"])
    today = timezone.localtime(timezone.now(), org.tzinfo).date()
    with scope(organization=org):
        rollup.forecast_submit(
            organization=org,
            subject=manager_member,
            submitted_by=manager_member,
            period=current_quarter(org),
            commit_amount=Decimal("1000000.50"),
            best_case_amount=Decimal("2000000.00"),
            today=today,
        )
    return {"manager": manager_member, "member": member, "other_rep": other_rep}


def login(client, membership, language):
    with scopes_disabled():
        membership.user.language = language
        membership.user.save(update_fields=["language"])
    client.force_login(membership.user)


def own_post(client, org, manager, commit, best_case, comment=""):
    return client.post(
        SUBMIT_URL,
        {
            "subject": manager.pk,
            "period": current_quarter(org).label,
            "page_member": "",
            "commit_amount": commit,
            "best_case_amount": best_case,
            "comment": comment,
        },
    )


def submission_count() -> int:
    with scopes_disabled():
        return ForecastSubmission.objects.count()


@pytest.mark.parametrize(
    ("language", "field_error", "summary"),
    [
        (
            "de",
            "Best Case (1.000,00\xa0€) liegt unter Commit (5.000,00\xa0€); Best Case enthält den Commit, "
            "geben Sie also mindestens den Commit ein.",
            [
                "Ihr Forecast für Mara Manager wurde nicht gespeichert.",
                "Prüfen Sie Best Case und senden Sie den Forecast dann erneut.",
            ],
        ),
        (
            "en",
            # AmountField reads "5.000" with a dot before three digits as 5,000 in either language.
            "Best case (€1,000.00) is below commit (€5,000.00); best case includes the commit, so enter at least the commit.",
            [
                "Your forecast for Mara Manager was not saved.",
                "Check Best case, then submit the forecast again.",
            ],
        ),
    ],
)
def test_best_case_below_commit_keeps_input(client, org, people, language, field_error, summary):
    login(client, people["manager"], language)

    response = own_post(client, org, people["manager"], "5.000", "1.000", "Mein Kommentar")

    assert response.status_code == 400
    assert submission_count() == 1
    body = response.content.decode()
    commit = attributes_of(body, "own-commit")
    best_case = attributes_of(body, "own-best-case")
    comment = attributes_of(body, "own-comment")
    assert commit["value"] == "5.000"
    assert "is-invalid" not in commit["class"]
    assert best_case["value"] == "1.000"
    assert best_case["class"] == "form-control is-invalid"
    assert best_case["aria-invalid"] == "true"
    assert best_case["aria-describedby"] == "own-best-case-error"
    assert comment["value"] == "Mein Kommentar"
    assert f'<div id="own-best-case-error" class="invalid-feedback">{field_error}</div>' in body
    assert response.context["submission_errors"] == summary


@pytest.mark.parametrize(
    ("language", "required", "summary"),
    [
        (
            "de",
            "Dieses Feld ist zwingend erforderlich.",
            [
                "Ihr Forecast für Mara Manager wurde nicht gespeichert.",
                "Prüfen Sie Commit und Best Case und senden Sie den Forecast dann erneut.",
            ],
        ),
        (
            "en",
            "This field is required.",
            [
                "Your forecast for Mara Manager was not saved.",
                "Check Commit and Best case, then submit the forecast again.",
            ],
        ),
    ],
)
def test_empty_amounts_error_at_each_field(client, org, people, language, required, summary):
    login(client, people["manager"], language)

    response = own_post(client, org, people["manager"], "", "", "Mein Kommentar")

    assert response.status_code == 400
    assert submission_count() == 1
    body = response.content.decode()
    assert attributes_of(body, "own-commit")["value"] == ""
    assert attributes_of(body, "own-best-case")["value"] == ""
    assert attributes_of(body, "own-comment")["value"] == "Mein Kommentar"
    assert f'<div id="own-commit-error" class="invalid-feedback">{required}</div>' in body
    assert f'<div id="own-best-case-error" class="invalid-feedback">{required}</div>' in body
    assert response.context["submission_errors"] == summary
    for sentence in summary:
        assert f'<p class="mb-0">{sentence}</p>' in body


def test_report_row_keeps_input(client, org, people):
    manager, member, other_rep = people["manager"], people["member"], people["other_rep"]
    login(client, manager, "en")

    response = client.post(
        SUBMIT_URL,
        {
            "subject": member.pk,
            "period": current_quarter(org).label,
            "page_member": "",
            "commit_amount": "12x",
            "best_case_amount": "900.00",
        },
    )

    assert response.status_code == 400
    assert submission_count() == 1
    body = response.content.decode()
    commit = attributes_of(body, f"commit-{member.pk}")
    assert commit["value"] == "12x"
    assert commit["aria-describedby"] == f"commit-{member.pk}-error"
    assert attributes_of(body, f"best-case-{member.pk}")["value"] == "900.00"
    assert (
        f'<div id="commit-{member.pk}-error" class="invalid-feedback">'
        "Commit: &#x27;12x&#x27; is not valid (invalid number; expected for example 12,500.00).</div>"
    ) in body
    # The other report's row and the manager's own form keep the saved figures.
    assert attributes_of(body, f"commit-{other_rep.pk}")["value"] == "0.00"
    assert attributes_of(body, "own-commit")["value"] == "1,000,000.50"
    assert attributes_of(body, "own-comment")["value"] == ""
    assert response.context["submission_errors"] == [
        "Your forecast for Rita Rep was not saved.",
        "Check Commit, then submit the forecast again.",
    ]


def test_rejected_page_filter_keeps_address(client, org, people):
    manager, member = people["manager"], people["member"]
    login(client, manager, "en")

    response = client.post(
        SUBMIT_URL,
        {
            "subject": member.pk,
            "period": current_quarter(org).label,
            "page_member": str(member.pk),
            "commit_amount": "",
            "best_case_amount": "900.00",
        },
    )

    assert response.status_code == 400
    assert response.context["page"].subject == member
    body = response.content.decode()
    period_form = attributes_of(body, "forecast-period-form")
    assert period_form["action"] == f"/o/acme/forecast/people/{member.pk}/"
    assert period_form["hx-get"] == f"/o/acme/forecast/people/{member.pk}/"
    assert attributes_of(body, "own-best-case")["value"] == "900.00"


def test_closed_period_rejected_with_400(client, org, people):
    manager = people["manager"]
    login(client, manager, "en")
    today = timezone.localtime(timezone.now(), org.tzinfo).date()
    allowed = rollup.submittable_periods(today=today, kind="quarter", start_month=org.fiscal_year_start_month)

    response = client.post(
        SUBMIT_URL,
        {"subject": manager.pk, "period": "2017-Q2", "commit_amount": "1", "best_case_amount": "2"},
    )

    assert response.status_code == 400
    assert submission_count() == 1
    assert response.context["submission_errors"] == [
        "Your forecast for Mara Manager was not saved.",
        f"Forecasts can be submitted for {period_name(allowed[0])} and {period_name(allowed[1])} only, not for Q2 FY 2017.",
    ]


def test_valid_submission_redirects(client, org, people):
    manager = people["manager"]
    login(client, manager, "en")

    response = own_post(client, org, manager, "5,000.00", "6,000.00", "Two deals slipped")

    assert response.status_code == 302
    assert response["Location"] == f"/o/acme/forecast/?period={current_quarter(org).label}"
    assert submission_count() == 2
    page = client.get(response["Location"])
    assert "Forecast for Mara Manager saved." in page.content.decode()


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("de", "Unbekannter Forecast-Zeitraum &#x27;week&#x27;; wählen Sie Quartal oder Monat."),
        ("en", "Unknown forecast period &#x27;week&#x27;; choose Quarter or Month."),
    ],
)
def test_unknown_period_kind_names_labels(client, org, admin_member, language, expected):
    login(client, admin_member, language)

    response = client.post("/o/acme/forecast/settings/", {"period_kind": "week"})

    body = response.content.decode()
    assert expected in body
    assert "quarter oder month" not in body
