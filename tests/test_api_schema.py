"""The OpenAPI schema checked by schemathesis against the API served on loopback by pytest-django's live server."""

import os

import pytest
import schemathesis
from django_scopes import scope
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from integrations.api.services import api_token_create

# Few examples per operation keep the run short; SCHEMATHESIS_MAX_EXAMPLES=100 searches longer.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8"))


@pytest.fixture
def write_token(transactional_db, org):
    with scope(organization=org):
        _token, plain = api_token_create(organization=org, name="schemathesis", scope="write", actor=None)
    return plain


def test_api_conforms_to_schema(live_server, write_token):
    # live_server listens on localhost (loopback), pytest-django's default address.
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/schema/?format=json", timeout=120)
    headers = {"Authorization": f"Bearer {write_token}", "Accept-Language": "en"}
    checked = []
    statuses = []

    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call_and_validate(
                base_url=live_server.url,
                timeout=120,
                headers=headers,
                checks=[not_a_server_error, content_type_conformance, response_schema_conformance],
            )
            statuses.append(response.status_code)

        check()
        checked.append(operation.label)

    assert "GET /api/v1/deals/" in checked
    assert "POST /api/v1/deals/" in checked
    assert "GET /api/v1/kpi-report/" in checked
    # The token is valid, so the generated requests reach the views rather than stopping at 401.
    assert 401 not in statuses
    assert statuses.count(200) >= len(checked)
