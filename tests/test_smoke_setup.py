import pytest
from django_scopes import scopes_disabled
from django_scopes.exceptions import ScopeError

from pipelines.models import Deal
from tests.factories import DealFactory


def test_deal_query_outside_scope_fails(member):
    with scopes_disabled():
        DealFactory(owner=member)
    with pytest.raises(ScopeError):
        list(Deal.objects.all())
