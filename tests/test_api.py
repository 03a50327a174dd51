"""The REST API under /api/v1/: tokens, scopes, tenancy, pagination, upserts, throttling and audit."""

import datetime as dt
import hashlib
import json

import pytest
import yaml
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse
from django_scopes import scope, scopes_disabled
from rest_framework.test import APIClient

from integrations.api.models import ApiToken
from integrations.api.services import api_token_create, api_token_revoke
from pipelines.models import Deal
from spm.models import AuditLog
from tests.factories import (
    DealFactory,
    MembershipFactory,
    PipelineFactory,
    StageFactory,
)

DEAL_RECORD = {
    "external_id": "D1",
    "owner": "Rita Rep",
    "stage": "Negotiation",
    "amount": 1200,
    "created_at": "2017-01-10",
}


@pytest.fixture(autouse=True)
def _empty_throttle_cache():
    # Throttle counters live in the cache; each test starts from zero requests.
    cache.clear()


def make_token(organization, scope_name="read", user=None):
    with scope(organization=organization):
        return api_token_create(organization=organization, name=f"{scope_name} token", scope=scope_name, actor=user)


def client_for(plain: str, language: str = "en") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}", HTTP_ACCEPT_LANGUAGE=language)
    return client


def deals_in(organization, count: int) -> list[Deal]:
    with scopes_disabled():
        stage = StageFactory(pipeline=PipelineFactory(organization=organization))
        owner = MembershipFactory(organization=organization)
        return [
            DealFactory(organization=organization, owner=owner, stage=stage, pipeline=stage.pipeline) for _ in range(count)
        ]


@pytest.mark.django_db
def test_token_stored_as_hash_only(org, admin_member):
    token, plain = make_token(org, "write", admin_member.user)

    with scopes_disabled():
        stored = ApiToken.objects.get(pk=token.pk)
        columns = json.dumps(list(ApiToken.objects.values_list("name", "prefix", "token_hash")))
    assert plain.startswith(f"spm_{org.pk}_")
    assert stored.token_hash == hashlib.sha256(plain.encode()).hexdigest()
    assert plain not in columns
    assert plain.startswith(stored.prefix)
    assert len(stored.prefix) < len(plain) - 30


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Organization nobody not found; check the slug or pass --create to create it."),
        ("de", "Organisation nobody nicht gefunden; prüfen Sie den Slug oder legen Sie die Organisation mit --create an."),
    ],
)
def test_token_command_unknown_organization(db, language, expected):
    from django.core.management import CommandError
    from django.utils import translation

    with translation.override(language), pytest.raises(CommandError) as raised:
        call_command("api_token_create", "--org", "nobody")

    assert str(raised.value) == expected


def test_request_without_token_is_401(org):
    response = APIClient().get(reverse("api_deals"))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.django_db
def test_invalid_token_is_401(org):
    _token, plain = make_token(org)

    response = client_for(plain[:-2] + "xx").get(reverse("api_deals"))

    assert response.status_code == 401
    assert "Invalid API token" in response.json()["detail"]


@pytest.mark.django_db
def test_revoked_token_is_401(org, admin_member):
    token, plain = make_token(org)
    with scope(organization=org):
        api_token_revoke(token=token, actor=admin_member.user)

    response = client_for(plain).get(reverse("api_deals"))

    assert response.status_code == 401
    assert response.json()["detail"] == "This API token was revoked; ask an admin for a new one."


@pytest.mark.django_db
def test_use_sets_last_used(org):
    token, plain = make_token(org)

    client_for(plain).get(reverse("api_deals"))

    with scopes_disabled():
        assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


@pytest.mark.django_db
def test_read_token_cannot_write(org):
    _token, plain = make_token(org, "read")

    response = client_for(plain).post(reverse("api_deals"), {"records": [DEAL_RECORD]}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "This API token may only read; ask an admin for a token with write scope."
    with scopes_disabled():
        assert Deal.objects.count() == 0


@pytest.mark.django_db
def test_token_sees_only_its_organization(org, other_org):
    own = deals_in(org, 2)
    foreign = deals_in(other_org, 3)
    _token, plain = make_token(org)
    client = client_for(plain)

    listed = client.get(reverse("api_deals")).json()["results"]
    foreign_detail = client.get(reverse("api_deal", kwargs={"deal_id": foreign[0].pk}))
    own_detail = client.get(reverse("api_deal", kwargs={"deal_id": own[0].pk}))

    assert sorted(deal["id"] for deal in listed) == sorted(deal.pk for deal in own)
    assert foreign_detail.status_code == 404
    assert own_detail.status_code == 200
    assert own_detail.json()["external_id"] == own[0].external_id


@pytest.mark.django_db
def test_write_lands_in_token_organization(org, other_org):
    _token, plain = make_token(other_org, "write")

    response = client_for(plain).post(reverse("api_deals"), {"records": [DEAL_RECORD]}, format="json")

    assert response.status_code == 200
    with scopes_disabled():
        assert list(Deal.objects.values_list("organization__slug", flat=True)) == ["globex"]


@pytest.mark.django_db
def test_cursor_pagination_walks_all_rows(org):
    deals = deals_in(org, 5)
    _token, plain = make_token(org)
    client = client_for(plain)

    seen = []
    url = reverse("api_deals") + "?page_size=2"
    pages = 0
    while url:
        body = client.get(url).json()
        seen += [deal["id"] for deal in body["results"]]
        url = body["next"]
        pages += 1

    assert seen == sorted(deal.pk for deal in deals)
    assert pages == 3


@pytest.mark.django_db
def test_updated_since_filters_deals(org):
    old, new = deals_in(org, 2)
    with scopes_disabled():
        Deal.objects.filter(pk=old.pk).update(updated_at=dt.datetime(2017, 1, 1, tzinfo=dt.timezone.utc))
        Deal.objects.filter(pk=new.pk).update(updated_at=dt.datetime(2017, 3, 1, tzinfo=dt.timezone.utc))
    _token, plain = make_token(org)
    client = client_for(plain)

    since_feb = client.get(reverse("api_deals"), {"updated_since": "2017-02-01T00:00:00Z"}).json()["results"]
    since_start = client.get(reverse("api_deals"), {"updated_since": "2016-12-31T00:00:00+01:00"}).json()["results"]
    invalid = client.get(reverse("api_deals"), {"updated_since": "yesterday"})

    assert [deal["id"] for deal in since_feb] == [new.pk]
    assert [deal["id"] for deal in since_start] == [old.pk, new.pk]
    assert invalid.status_code == 400
    assert invalid.json()["errors"] == [
        {
            "field": "updated_since",
            "value": "yesterday",
            "reason": "Invalid value 'yesterday'; give an ISO 8601 time such as 2017-03-01T00:00:00Z.",
        }
    ]


@pytest.mark.django_db
def test_nul_in_query_parameter_is_400(org):
    """PostgreSQL text cannot hold NUL, so a filter value with one used to fail the request with a 500."""
    _token, plain = make_token(org)

    response = client_for(plain).get(reverse("api_deals"), {"source": "maven\x00", "page_size": "5"})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "source",
            "value": "maven\x00",
            "reason": "Invalid value: it contains a NUL character (0x00); remove it and send the request again.",
        }
    ]


@pytest.mark.django_db
def test_upsert_twice_changes_nothing(org):
    _token, plain = make_token(org, "write")
    client = client_for(plain)
    batch = {"source": "crm", "records": [DEAL_RECORD, {**DEAL_RECORD, "external_id": "D2", "status": "won", "closed_at": "2017-02-01"}]}

    first = client.post(reverse("api_deals"), batch, format="json").json()
    second = client.put(reverse("api_deals"), batch, format="json").json()

    assert first["counts"]["deals"]["created"] == 2
    assert first["rejected"] == []
    assert second["counts"]["deals"] == {"created": 0, "updated": 0, "unchanged": 2, "deleted": 0, "rejected": 0}
    with scopes_disabled():
        assert Deal.objects.filter(source="crm").count() == 2
        assert Deal.objects.get(external_id="D2").status == "won"


@pytest.mark.django_db
def test_every_write_is_audited(org, admin_member):
    token, plain = make_token(org, "write", admin_member.user)
    client = client_for(plain)

    client.post(reverse("api_people"), {"records": [{"external_id": "Rita Rep"}]}, format="json")
    client.post(reverse("api_deals"), {"records": [DEAL_RECORD]}, format="json")

    with scopes_disabled():
        entries = list(AuditLog.objects.filter(organization=org).order_by("pk").values_list("action", "object_id", "after"))
    assert [(action, object_id) for action, object_id, _after in entries] == [
        ("api_token.created", str(token.pk)),
        ("import.finished", "api"),
        ("import.finished", "api"),
    ]
    assert entries[1][2]["path"] == f"api token {token.pk}"
    assert entries[2][2]["counts"]["deals"]["created"] == 1


@pytest.mark.django_db
def test_rejections_name_field_value_reason(org):
    _token, plain = make_token(org, "write")

    body = client_for(plain).post(
        reverse("api_deals"), {"records": [{**DEAL_RECORD, "amount": "-3"}]}, format="json"
    ).json()

    assert body["rejected"] == [
        {
            "entity": "deals",
            "index": 0,
            "external_id": "D1",
            "field": "amount",
            "value": "-3",
            "reason": "negative amount; amounts must be 0 or more",
        }
    ]


@pytest.mark.django_db
def test_rejections_in_german(org):
    _token, plain = make_token(org, "write")

    body = client_for(plain, "de").post(
        reverse("api_deals"), {"records": [{**DEAL_RECORD, "status": "vielleicht"}]}, format="json"
    ).json()

    assert body["rejected"][0]["field"] == "status"
    assert body["rejected"][0]["reason"] != "unknown status; expected open, won or lost"


@pytest.mark.django_db
def test_invalid_batch_is_400(org):
    _token, plain = make_token(org, "write")

    response = client_for(plain).post(reverse("api_deals"), {"source": "Bad Source!", "records": "x"}, format="json")

    assert response.status_code == 400
    fields = {error["field"]: error for error in response.json()["errors"]}
    assert set(fields) == {"source", "records"}
    assert fields["source"]["value"] == "Bad Source!"


@pytest.mark.django_db
def test_throttle_limits_each_token(org, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_token": "2/minute"}}
    _first, first_plain = make_token(org)
    _second, second_plain = make_token(org)
    first, second = client_for(first_plain), client_for(second_plain)

    statuses = [first.get(reverse("api_quotas")).status_code for _ in range(3)]
    other = second.get(reverse("api_quotas")).status_code

    assert statuses == [200, 200, 429]
    assert other == 200


@pytest.mark.django_db
def test_stage_change_backwards_through_api(org):
    _token, plain = make_token(org, "write")
    client = client_for(plain)
    client.post(reverse("api_deals"), {"records": [{**DEAL_RECORD, "status": "won", "closed_at": "2017-02-01"}]}, format="json")

    body = client.post(
        reverse("api_stage_changes"),
        {"records": [{"deal": "D1", "stage": "Negotiation", "changed_at": "2017-02-05T10:00:00Z"}]},
        format="json",
    ).json()
    deal = client.get(reverse("api_deals")).json()["results"][0]
    moves = client.get(reverse("api_stage_changes")).json()["results"]

    assert body["counts"]["stage_changes"]["created"] == 1
    assert deal["status"] == "open"
    assert deal["stage"] == "Negotiation"
    assert [(move["from_stage"], move["to_stage"]) for move in moves] == [
        (None, "Negotiation"),
        ("Negotiation", "Won"),
        ("Won", "Negotiation"),
    ]


@pytest.mark.django_db
def test_same_day_earlier_stage_change_through_api(org):
    """A move earlier on the creation day replaces the implied entry and decides the stage. Sending it again changes nothing."""
    _token, plain = make_token(org, "write")
    client = client_for(plain)
    client.post(reverse("api_deals"), {"records": [DEAL_RECORD]}, format="json")
    change = {"records": [{"deal": "D1", "stage": "Qualified", "changed_at": "2017-01-10T08:00:00Z"}]}

    first = client.post(reverse("api_stage_changes"), change, format="json").json()
    deal = client.get(reverse("api_deals")).json()["results"][0]
    moves = client.get(reverse("api_stage_changes")).json()["results"]

    assert first["counts"]["stage_changes"] == {"created": 1, "updated": 0, "unchanged": 0, "deleted": 1, "rejected": 0}
    assert first["counts"]["deals"]["updated"] == 1
    assert deal["stage"] == "Qualified"
    assert deal["status"] == "open"
    assert deal["created_at"] == "2017-01-10T08:00:00Z"
    assert [(move["from_stage"], move["to_stage"], move["changed_at"], move["is_implied"]) for move in moves] == [
        (None, "Qualified", "2017-01-10T08:00:00Z", False),
    ]

    again = client.post(reverse("api_stage_changes"), change, format="json").json()

    assert again["counts"]["stage_changes"] == {"created": 0, "updated": 0, "unchanged": 1, "deleted": 0, "rejected": 0}
    assert again["counts"]["deals"]["updated"] == 0
    assert len(client.get(reverse("api_stage_changes")).json()["results"]) == 1
    assert client.get(reverse("api_deals")).json()["results"][0]["stage"] == "Qualified"


@pytest.mark.django_db
def test_deleted_deal_keeps_row_through_api(org):
    _token, plain = make_token(org, "write")
    client = client_for(plain)
    client.post(reverse("api_deals"), {"records": [DEAL_RECORD]}, format="json")

    body = client.post(reverse("api_deals"), {"records": [{"external_id": "D1", "deleted": True}]}, format="json").json()
    listed = client.get(reverse("api_deals")).json()["results"]

    assert body["counts"]["deals"]["updated"] == 1
    assert len(listed) == 1
    assert listed[0]["deleted_at"] is not None


@pytest.mark.django_db
def test_kpi_report_equals_command(org, django_capture_on_commit_callbacks, capsys):
    _token, plain = make_token(org, "write")
    client = client_for(plain)
    records = [
        {**DEAL_RECORD, "external_id": "W1", "status": "won", "amount": "1000.50", "closed_at": "2017-02-01"},
        {**DEAL_RECORD, "external_id": "W2", "status": "won", "amount": 500, "closed_at": "2017-05-01"},
        {**DEAL_RECORD, "external_id": "L1", "status": "lost", "amount": 300, "closed_at": "2017-03-01"},
        {**DEAL_RECORD, "external_id": "O1"},
    ]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("api_deals"), {"records": records}, format="json")

    report = client.get(reverse("api_kpi_report"), {"period": "2017", "by": "organization"}).json()
    call_command("kpi_report", org="acme", period="2017", by="organization")
    printed = json.loads(capsys.readouterr().out)

    assert report == printed
    row = report["rows"][0]
    assert row["won_count"] == 2
    assert row["lost_count"] == 1
    assert row["won_amount"] == "1500.50"
    assert row["win_rate"] == pytest.approx(2 / 3)


@pytest.mark.django_db
def test_kpi_report_rejects_missing_period(org):
    _token, plain = make_token(org)

    response = client_for(plain).get(reverse("api_kpi_report"), {"by": "organization"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "period"


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["2017-13-45", "2017-02-30T00:00:00Z", "2017-03-01T25:00:00"])
@pytest.mark.parametrize("url_name", ["api_deals", "api_stage_changes", "api_activities", "api_quotas", "api_kpi_snapshots"])
def test_impossible_updated_since_is_400(org, url_name, value):
    """A well-formed but impossible time made parse_datetime raise, and the request failed with a 500."""
    _token, plain = make_token(org)

    response = client_for(plain).get(reverse(url_name), {"updated_since": value})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "updated_since",
            "value": value,
            "reason": f"Invalid value '{value}'; give an ISO 8601 time such as 2017-03-01T00:00:00Z.",
        }
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field", "value", "reason"),
    [
        ({"page_size": "abc"}, "page_size", "abc", "Invalid value 'abc'; give a whole number from 1 to 1000."),
        ({"page_size": "0"}, "page_size", "0", "Invalid value '0'; give a whole number from 1 to 1000."),
        ({"page_size": "-1"}, "page_size", "-1", "Invalid value '-1'; give a whole number from 1 to 1000."),
        ({"page_size": "100000"}, "page_size", "100000", "Invalid value '100000'; give a whole number from 1 to 1000."),
        ({"cursor": "garbage"}, "cursor", "garbage", "Invalid cursor; use the next or previous link of an earlier page."),
    ],
)
def test_invalid_paging_is_400(org, params, field, value, reason):
    """DRF served the default page for a bad page size and a 404 for a bad cursor."""
    _token, plain = make_token(org)

    response = client_for(plain).get(reverse("api_deals"), params)

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": field, "value": value, "reason": reason}]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url_name", "params", "field", "value", "reason"),
    [
        (
            "api_kpi_snapshots",
            {"grain": "x"},
            "grain",
            "x",
            "Invalid value 'x'; use one of: organization, territory, team, rep.",
        ),
        (
            "api_kpi_snapshots",
            {"period_kind": "week"},
            "period_kind",
            "week",
            "Invalid value 'week'; use one of: year, quarter, month.",
        ),
        (
            "api_kpi_snapshots",
            {"bogus": "1"},
            "bogus",
            "1",
            "Unknown query parameter 'bogus'; this endpoint accepts: cursor, format, grain, page_size, period_kind,"
            " period_start, updated_since.",
        ),
        (
            "api_quotas",
            {"bogus": "1"},
            "bogus",
            "1",
            "Unknown query parameter 'bogus'; this endpoint accepts: cursor, format, page_size, updated_since.",
        ),
    ],
)
def test_snapshot_and_quota_filters_checked(org, url_name, params, field, value, reason):
    """These two lists ignored unknown parameters and returned no rows for an unknown grain."""
    _token, plain = make_token(org)

    response = client_for(plain).get(reverse(url_name), params)

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": field, "value": value, "reason": reason}]


@pytest.mark.django_db
def test_impossible_period_start_is_400(org):
    _token, plain = make_token(org)

    response = client_for(plain).get(reverse("api_kpi_snapshots"), {"period_start": "2017-13-01"})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "period_start", "value": "2017-13-01", "reason": "Invalid value '2017-13-01'; give a date such as 2017-01-01."}
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field", "value", "reason"),
    [
        (
            {"metric": "attainment", "by": "rep", "as_of": "2017-02-30"},
            "as_of",
            "2017-02-30",
            "Invalid value '2017-02-30'; give a date such as 2017-01-01.",
        ),
        (
            {"metric": "attainment", "by": "rep", "quota_metric": "bogus"},
            "quota_metric",
            "bogus",
            "Invalid value 'bogus'; use one of: won_revenue, won_deals, pipeline_created, activities, meetings.",
        ),
        (
            {"metric": "attainment"},
            "by",
            None,
            "Missing value; use one of: rep, team, territory.",
        ),
        (
            {"metric": "bogus"},
            "metric",
            "bogus",
            "Invalid value 'bogus'; use one of: funnel, time_in_stage, velocity, waterfall, attainment.",
        ),
        ({}, "by", None, "Missing value; use one of: organization, territory, team, rep."),
    ],
)
def test_kpi_report_error_names_parameter(org, params, field, value, reason):
    """Each error names the query parameter at fault, not `by` and not the command's option."""
    _token, plain = make_token(org)

    response = client_for(plain).get(reverse("api_kpi_report"), {"period": "2017", **params})

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": field, "value": value, "reason": reason}]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url_name", "kwargs"),
    [("api_deals", {}), ("api_deal", {"deal_id": 999}), ("api_kpi_report", {}), ("api_kpi_snapshots", {})],
)
@pytest.mark.parametrize(
    ("language", "reason"),
    [("en", "Invalid value 'xml'; use one of: json."), ("de", "Ungültiger Wert 'xml'; zulässig sind: json.")],
)
def test_unknown_format_is_400(org, url_name, kwargs, language, reason):
    """DRF returned 404 for an unknown ?format=, as if the endpoint did not exist."""
    _token, plain = make_token(org)

    response = client_for(plain, language).get(reverse(url_name, kwargs=kwargs), {"format": "xml"})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": reason, "errors": [{"field": "format", "value": "xml", "reason": reason}]}


@pytest.mark.django_db
def test_unknown_format_in_organization_language(org):
    """Without Accept-Language the message is in the organization's language, as for other query parameters."""
    _token, plain = make_token(org)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")

    response = client.get(reverse("api_deals"), {"format": "xml"})

    assert org.language == "de"
    assert response.status_code == 400
    assert response.json()["detail"] == "Ungültiger Wert 'xml'; zulässig sind: json."


@pytest.mark.django_db
def test_unknown_format_without_token_is_401():
    response = APIClient().get(reverse("api_deals"), {"format": "xml"}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 401


@pytest.mark.django_db
def test_json_format_is_accepted(org):
    _token, plain = make_token(org)

    response = client_for(plain).get(reverse("api_deals"), {"format": "json"})

    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.django_db
def test_schema_rejects_unknown_format(client):
    reason = "Invalid value 'xml'; use one of: yaml, json."

    response = client.get(reverse("api_schema"), {"format": "xml"}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    # The schema view renders errors with its first renderer, which writes YAML.
    body = yaml.safe_load(response.content)
    assert body == {"detail": reason, "errors": [{"field": "format", "value": "xml", "reason": reason}]}


@pytest.mark.django_db
def test_token_page_shows_token_once(client, org, admin_member):
    client.force_login(admin_member.user)
    url = reverse("api_tokens", kwargs={"org_slug": org.slug})

    created = client.post(url, {"name": "BI export", "scope": "write"}, follow=True)
    reloaded = client.get(url)

    with scopes_disabled():
        token = ApiToken.objects.get()
    plain = created.context["new_token"]
    assert created.redirect_chain == [(url, 302)]
    assert plain.startswith(f"spm_{org.pk}_")
    assert plain in created.content.decode()
    assert created["Cache-Control"] == "no-store"
    assert plain not in reloaded.content.decode()
    assert token.prefix in reloaded.content.decode()
    assert token.scope == "write"


@pytest.mark.django_db
def test_token_page_revokes(client, org, admin_member):
    token, plain = make_token(org)
    client.force_login(admin_member.user)

    response = client.post(reverse("api_token_revoke", kwargs={"org_slug": org.slug, "token_id": token.pk}))

    assert response.status_code == 302
    assert client_for(plain).get(reverse("api_deals")).status_code == 401
    with scopes_disabled():
        assert AuditLog.objects.filter(action="api_token.revoked", object_id=str(token.pk)).count() == 1


@pytest.mark.django_db
def test_schema_and_docs_are_served(client):
    schema = client.get(reverse("api_schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get(reverse("api_docs"))
    script = client.get(reverse("api_docs") + "?script=")

    assert schema.status_code == 200
    assert "/api/v1/deals/" in json.loads(schema.content)["paths"]
    assert docs.status_code == 200
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in docs.content.decode()
    assert "<script>" not in docs.content.decode()
    assert script["Content-Type"].startswith("application/javascript")


@pytest.mark.django_db
def test_quotas_and_snapshots_stay_in_organization(org, other_org, member, other_org_admin):
    from dashboards.models import KpiSnapshot
    from goals.models import Quota

    with scopes_disabled():
        own_quota = Quota.objects.create(
            organization=org, level="rep", membership=member, period_kind="year", period_start=dt.date(2017, 1, 1),
            metric="won_revenue", target="1000.00",
        )
        Quota.objects.create(
            organization=other_org, level="rep", membership=other_org_admin, period_kind="year",
            period_start=dt.date(2017, 1, 1), metric="won_revenue", target="9.00",
        )
        for organization in (org, other_org):
            KpiSnapshot.objects.create(
                organization=organization, period_kind="year", period_start=dt.date(2017, 1, 1),
                period_end=dt.date(2018, 1, 1), grain="organization", subject_id=0, subject_name=organization.name,
                won_count=3, won_amount="30.00",
            )
    _token, plain = make_token(org)
    client = client_for(plain)

    quotas = client.get(reverse("api_quotas")).json()["results"]
    snapshots = client.get(reverse("api_kpi_snapshots"), {"grain": "organization", "period_start": "2017-01-01"}).json()["results"]
    bad_start = client.get(reverse("api_kpi_snapshots"), {"period_start": "2017"})

    assert [(quota["id"], quota["target"]) for quota in quotas] == [(own_quota.pk, "1000.00")]
    assert [(row["subject_name"], row["won_amount"]) for row in snapshots] == [("Acme", "30.00")]
    assert bad_start.status_code == 400
    assert bad_start.json()["errors"][0]["field"] == "period_start"


@pytest.mark.django_db
def test_people_accounts_activities_round_trip(org):
    _token, plain = make_token(org, "write")
    client = client_for(plain)

    client.post(reverse("api_people"), {"records": [{"external_id": "R1", "email": "r1@acme.example", "name": "Rita", "territory": "West"}]}, format="json")
    client.post(reverse("api_accounts"), {"records": [{"external_id": "ACME", "name": "Acme GmbH", "employees": "12"}]}, format="json")
    written = client.post(
        reverse("api_activities"),
        {"records": [{"external_id": "A1", "kind": "call", "owner": "R1", "account": "ACME", "occurred_at": "2017-02-01T10:00:00Z"}]},
        format="json",
    ).json()

    people = client.get(reverse("api_people")).json()["results"]
    accounts = client.get(reverse("api_accounts")).json()["results"]
    activities = client.get(reverse("api_activities")).json()["results"]
    assert written["counts"]["activities"]["created"] == 1
    assert [(person["external_id"], person["email"], person["territory"]) for person in people] == [("R1", "r1@acme.example", "West")]
    assert [(account["external_id"], account["employees"]) for account in accounts] == [("ACME", 12)]
    assert [(activity["owner"], activity["account"], activity["occurred_at"]) for activity in activities] == [
        ("R1", "ACME", "2017-02-01T10:00:00Z")
    ]


ADMIN_ROLE_KEPT = {
    "en": "admins keep their role; change it on the people page",
    "de": "Admins behalten ihre Rolle; ändern Sie sie auf der Personenseite",
}
ACCOUNT_NAME_KEPT = {
    "en": (
        "existing accounts keep their name because an account can belong to several organizations; "
        "change it with a people upload on the people page"
    ),
    "de": (
        "Bestehende Konten behalten ihren Namen, weil ein Konto zu mehreren Organisationen gehören kann; "
        "ändern Sie ihn mit einem Personen-Upload auf der Personenseite"
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "de"])
def test_people_post_warns_about_admin_role(org, admin_member, language):
    _token, plain = make_token(org, "write")
    record = {"external_id": "ADM", "email": "admin@acme.example", "role": "rep"}

    first = client_for(plain, language).post(reverse("api_people"), {"records": [record]}, format="json").json()
    second = client_for(plain, language).post(reverse("api_people"), {"records": [record]}, format="json").json()

    warning = {"entity": "people", "index": 0, "external_id": "ADM", "field": "role", "value": "rep", "reason": ADMIN_ROLE_KEPT[language]}
    # The first call stores the external id, so the record counts as updated; the role is not applied.
    assert first["counts"]["people"] == {"created": 0, "updated": 1, "unchanged": 0, "deleted": 0, "rejected": 0}
    assert first["rejected"] == []
    assert first["warnings"] == [warning]
    assert second["counts"]["people"] == {"created": 0, "updated": 0, "unchanged": 1, "deleted": 0, "rejected": 0}
    assert second["warnings"] == [warning]
    with scopes_disabled():
        admin_member.refresh_from_db()
    assert admin_member.role == "admin"
    assert admin_member.external_id == "ADM"


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "de"])
def test_people_post_warns_about_account_name(org, admin_member, language):
    _token, plain = make_token(org, "write")
    with scopes_disabled():
        admin_member.user.name = "Ada Admin"
        admin_member.user.save(update_fields=["name"])
    records = [
        {"external_id": "ADM", "email": "admin@acme.example", "name": "Ada Renamed"},
        {"external_id": "ADM2", "email": "new@acme.example", "name": "Nina New"},
        {"external_id": "ADM", "email": "admin@acme.example", "name": "Ada Admin"},
    ]

    first = client_for(plain, language).post(reverse("api_people"), {"records": records[:2]}, format="json").json()
    same_name = client_for(plain, language).post(reverse("api_people"), {"records": records[2:]}, format="json").json()

    assert first["counts"]["people"] == {"created": 1, "updated": 1, "unchanged": 0, "deleted": 0, "rejected": 0}
    assert first["warnings"] == [
        {"entity": "people", "index": 0, "external_id": "ADM", "field": "name", "value": "Ada Renamed", "reason": ACCOUNT_NAME_KEPT[language]}
    ]
    assert same_name["warnings"] == []
    with scopes_disabled():
        admin_member.user.refresh_from_db()
    assert admin_member.user.name == "Ada Admin"


@pytest.mark.django_db
def test_people_post_without_role_no_warning(org, admin_member):
    _token, plain = make_token(org, "write")

    body = client_for(plain).post(
        reverse("api_people"), {"records": [{"external_id": "ADM", "email": "admin@acme.example"}]}, format="json"
    ).json()

    assert body["warnings"] == []
    assert body["counts"]["people"]["updated"] == 1


@pytest.mark.django_db
def test_read_token_cannot_put(org):
    _token, plain = make_token(org, "read")

    response = client_for(plain).put(reverse("api_people"), {"records": [{"external_id": "X"}]}, format="json")

    assert response.status_code == 403


@pytest.mark.django_db
def test_errors_in_organization_language_without_header(org):
    _token, plain = make_token(org)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")

    german = client.get(reverse("api_deal", kwargs={"deal_id": 999}))
    english = client_for(plain, "en").get(reverse("api_deal", kwargs={"deal_id": 999}))

    assert org.language == "de"
    assert german.status_code == 404
    assert german.json()["detail"] == "Nicht gefunden."
    assert english.json()["detail"] == "Not found."


@pytest.mark.django_db
def test_updated_since_with_large_offset(org):
    deal = deals_in(org, 1)[0]
    with scopes_disabled():
        Deal.objects.filter(pk=deal.pk).update(updated_at=dt.datetime(2017, 1, 2, tzinfo=dt.timezone.utc))
    _token, plain = make_token(org)
    client = client_for(plain)

    # 2017-01-01T00:00-18:46 is 2017-01-01T18:46Z; PostgreSQL rejects the offset itself.
    found = client.get(reverse("api_deals"), {"updated_since": "2017-01-01T00:00:00-18:46"})
    overflow = client.get(reverse("api_deals"), {"updated_since": "0001-01-01T00:00:00+18:00"})

    assert found.status_code == 200
    assert [row["id"] for row in found.json()["results"]] == [deal.pk]
    assert overflow.status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("deal_count", [2, 12])
def test_deal_list_query_count_is_constant(org, deal_count, django_assert_num_queries):
    deals_in(org, deal_count)
    _token, plain = make_token(org)
    client = client_for(plain)
    client.get(reverse("api_quotas"))  # records last_used_at, which a second request within a minute skips

    # The token lookup, then the page of deals with owner, stage, pipeline, account and product joined.
    with django_assert_num_queries(2):
        response = client.get(reverse("api_deals"))

    assert len(response.json()["results"]) == deal_count


@pytest.mark.django_db
def test_unknown_query_parameter_rejected(org):
    _token, plain = make_token(org, "read")
    client = client_for(plain)

    response = client.get(reverse("api_deals"), {"limit": "2"})

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["field"], error["value"]) == ("limit", "2")
    assert "Unknown query parameter 'limit'" in error["reason"]
    assert "page_size" in error["reason"]
    assert client.get(reverse("api_deals"), {"page_size": "2", "source": "api"}).status_code == 200
