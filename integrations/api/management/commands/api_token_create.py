"""Create an API token from the command line, e.g. for a script that loads a new organization."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext
from django_scopes import scope

from integrations.api.models import ApiTokenScope
from integrations.api.services import api_token_create
from spm.models import Organization


class Command(BaseCommand):
    help = (
        "Create an API token of one organization and print it; the token is stored only as a hash. "
        "With --create the organization is created first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the organization.")
        parser.add_argument("--name", default="command line", help="Name of the token, shown on the API tokens page.")
        parser.add_argument("--scope", default=ApiTokenScope.READ, choices=ApiTokenScope.values, help="read or write.")
        parser.add_argument("--create", action="store_true", help="Create the organization if it does not exist.")
        parser.add_argument("--currency", default="EUR", help="Base currency of an organization created with --create.")

    def handle(self, *args, **options):
        slug = options["org"]
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            if not options["create"]:
                raise CommandError(
                    gettext("Organization %(slug)s not found; check the slug or pass --create to create it.")
                    % {"slug": slug}
                )
            organization = Organization.objects.create(name=slug, slug=slug, currency=options["currency"].upper())
        with scope(organization=organization):
            _token, plain = api_token_create(
                organization=organization, name=options["name"], scope=options["scope"], actor=None
            )
        self.stdout.write(plain)
