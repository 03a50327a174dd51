"""Prepare three demo logins in an imported organization: admin, manager and rep.

Run after `import_crm`, which creates the people of the CRM export as users. This
command adds an admin and gives the admin, the chosen manager and the chosen rep
one known password. Running it again updates the same rows.
"""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext
from django_scopes import scope

from dashboards.templatetags.spm_format import format_money, format_number
from pipelines.models import Deal
from spm.audit import MEMBERSHIP_CREATED, ROLE_CHANGED
from spm.models import AuditLog, Membership, Organization, Role, User
from spm.tenancy import membership_ids_visible

DEFAULT_PASSWORD = "spm-demo-2017"


class Command(BaseCommand):
    help = (
        "Create or update the demo admin and set a known password on the admin, one manager "
        "and one of that manager's reps, then print the three logins."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the imported organization, e.g. demo.")
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="Password for all three logins.")
        parser.add_argument(
            "--admin-email",
            default=None,
            help="E-mail of the admin login to create or update (default: admin@<org>.example).",
        )
        parser.add_argument(
            "--manager-email",
            default=None,
            help="E-mail of an imported manager (default: dustin.brinkmann@<org>.example).",
        )
        parser.add_argument(
            "--rep-email",
            default=None,
            help="E-mail of an imported rep who reports to the manager and owns deals "
            "(default: anna.snelling@<org>.example).",
        )
        parser.add_argument(
            "--quotas",
            type=int,
            metavar="YEAR",
            nargs="?",
            const=2017,
            help="Also set equal quarterly won_revenue quotas for every rep with won deals in this fiscal year "
            "(default 2017): the year's won amount / reps / 4, rounded to 5,000. See goals.services.demo_quotas_set.",
        )

    def handle(self, *args, **options):
        slug = options["org"]
        admin_email = (options["admin_email"] or f"admin@{slug}.example").lower()
        manager_email = (options["manager_email"] or f"dustin.brinkmann@{slug}.example").lower()
        rep_email = (options["rep_email"] or f"anna.snelling@{slug}.example").lower()

        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(
                gettext("Organization %(slug)s not found; run `manage.py import_crm --org %(slug)s ... --create` first.")
                % {"slug": slug}
            )
        with translation.override(organization.language):
            self.logins_prepare(organization, options, admin_email, manager_email, rep_email)

    def logins_prepare(
        self, organization: Organization, options: dict, admin_email: str, manager_email: str, rep_email: str
    ) -> None:
        """Set up the three logins and the optional quotas, and print them in the active language."""
        password = options["password"]
        try:
            validate_password(password)
        except ValidationError as error:
            raise CommandError(
                gettext("The demo password was rejected: %(reasons)s") % {"reasons": " ".join(error.messages)}
            ) from None

        with scope(organization=organization), transaction.atomic():
            manager = self._imported_member(organization, manager_email, Role.MANAGER)
            rep = self._imported_member(organization, rep_email, Role.REP)
            if rep.pk not in membership_ids_visible(manager):
                raise CommandError(
                    gettext("%(rep)s does not report to %(manager)s; pick a rep from that manager's team.")
                    % {"rep": rep_email, "manager": manager_email}
                )
            if not Deal.objects.filter(owner=rep).exists():
                raise CommandError(
                    gettext("%(email)s owns no deals; pick a rep with deals so the demo shows numbers.")
                    % {"email": rep_email}
                )

            admin = self._admin_ensure(organization, admin_email)
            for membership in (admin, manager, rep):
                membership.user.set_password(password)
                membership.user.is_active = True
                membership.user.save(update_fields=["password", "is_active"])

        if options.get("quotas"):
            self.quotas_set(organization, year=options["quotas"])
        self.stdout.write(
            gettext("Demo logins for organization %(slug)s (password for all: %(password)s):")
            % {"slug": organization.slug, "password": password}
        )
        logins = [(membership.get_role_display(), membership) for membership in (admin, manager, rep)]
        label_width = max(len(label) for label, _membership in logins)
        for label, membership in logins:
            self.stdout.write(f"  {label:<{label_width}}  {membership.user.email:<36} {membership.display_name}")

    def quotas_set(self, organization: Organization, *, year: int) -> None:
        from goals.services import demo_quotas_set

        with scope(organization=organization):
            result = demo_quotas_set(organization=organization, year=year)
        if result["quota"] is None:
            self.stdout.write(gettext("No won deals in FY %(year)s, so no quotas were set.") % {"year": year})
            return
        self.stdout.write(
            gettext(
                "Quarterly won revenue quota per rep in FY %(year)s: %(amount)s; "
                "%(created)s created, %(updated)s updated, %(unchanged)s unchanged."
            )
            % {
                "year": year,
                "amount": format_money(result["quota"], organization.currency),
                "created": format_number(result["created"]),
                "updated": format_number(result["updated"]),
                "unchanged": format_number(result["unchanged"]),
            }
        )

    def _imported_member(self, organization: Organization, email: str, role: Role) -> Membership:
        membership = Membership.objects.filter(user__email=email).select_related("user").first()
        if membership is None:
            raise CommandError(
                gettext(
                    "No member with e-mail %(email)s in %(slug)s; run import_crm first or pass the e-mail of an "
                    "imported member."
                )
                % {"email": email, "slug": organization.slug}
            )
        if membership.role != role:
            raise CommandError(
                gettext("%(email)s has the role %(role)s; pick a member with the role %(expected)s.")
                % {"email": email, "role": membership.get_role_display(), "expected": role.label}
            )
        return membership

    def _admin_ensure(self, organization: Organization, email: str) -> Membership:
        """Return the admin membership for `email`, creating the user or raising the role as needed."""
        user, _created = User.objects.get_or_create(email=email, defaults={"name": "Demo Admin"})
        membership, created = Membership.objects.get_or_create(
            organization=organization, user=user, defaults={"role": Role.ADMIN}
        )
        if created:
            AuditLog.objects.create(
                organization=organization,
                action=MEMBERSHIP_CREATED,
                object_type="membership",
                object_id=str(membership.pk),
                after={"user_id": user.pk, "role": Role.ADMIN},
            )
        elif membership.role != Role.ADMIN:
            before = membership.role
            membership.role = Role.ADMIN
            membership.save(update_fields=["role"])
            AuditLog.objects.create(
                organization=organization,
                action=ROLE_CHANGED,
                object_type="membership",
                object_id=str(membership.pk),
                before={"role": before},
                after={"role": Role.ADMIN},
            )
        return membership
