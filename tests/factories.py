"""factory_boy factories for the domain models.

Tenant-owned factories take `organization` explicitly; create them inside
`django_scopes.scopes_disabled()` (the `org` fixtures do) or a scope.
"""

import datetime as dt
from decimal import Decimal

import factory

from goals.models import Team, Territory
from pipelines.models import Account, Deal, DealStageChange, DealStatus, Pipeline, Product, Stage, StageKind
from spm.models import Membership, Organization, Role, User


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Sequence(lambda n: f"User {n}")
    password = factory.django.Password("correct-horse-battery")


class TerritoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Territory

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Territory {n}")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.REP


class PipelineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pipeline

    organization = factory.SubFactory(OrganizationFactory)
    name = "Sales"
    is_default = True


class StageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Stage

    organization = factory.SelfAttribute("pipeline.organization")
    pipeline = factory.SubFactory(PipelineFactory)
    name = factory.Sequence(lambda n: f"Stage {n}")
    order = factory.Sequence(lambda n: n + 1)
    probability = 10
    kind = StageKind.OPEN


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Account {n}")
    external_id = factory.SelfAttribute("name")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    list_price_amount = Decimal("1000.00")


class DealFactory(factory.django.DjangoModelFactory):
    """A deal row; KPI tests set `status`, `created_at` and `closed_at` directly."""

    class Meta:
        model = Deal

    organization = factory.SelfAttribute("owner.organization")
    owner = factory.SubFactory(MembershipFactory)
    source = "test"
    external_id = factory.Sequence(lambda n: f"D{n:05d}")
    name = factory.Sequence(lambda n: f"Deal {n}")
    pipeline = factory.SelfAttribute("stage.pipeline")
    stage = factory.SubFactory(StageFactory, pipeline__organization=factory.SelfAttribute("...organization"))
    amount = Decimal("1000.00")
    base_amount = factory.SelfAttribute("amount")
    currency = "EUR"
    status = DealStatus.OPEN
    created_at = dt.datetime(2017, 1, 10, 12, 0, tzinfo=dt.timezone.utc)


class DealStageChangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DealStageChange

    organization = factory.SelfAttribute("deal.organization")
    deal = factory.SubFactory(DealFactory)
    to_stage = factory.SelfAttribute("deal.stage")
    changed_at = factory.SelfAttribute("deal.created_at")
