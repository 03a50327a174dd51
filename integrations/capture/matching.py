"""Matching e-mail addresses to members, accounts and open deals for captured activities."""

from django.db.models import Case, IntegerField, Value, When

from integrations.capture.models import AccountDomain
from pipelines.models import Account, Deal, DealStatus
from spm.models import Membership


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower().rstrip(".") if "@" in address else ""


def member_emails() -> dict[str, Membership]:
    """Return {lower-case e-mail: membership} of the current organization's members."""
    return {member.user.email.lower(): member for member in Membership.objects.select_related("user")}


class AccountMatcher:
    """Finds the account of a set of addresses through AccountDomain, ignoring the organization's own people."""

    def __init__(self):
        self.accounts_by_domain = {
            row.domain: row.account for row in AccountDomain.objects.select_related("account")
        }
        self.members = member_emails()

    def counterparts(self, addresses) -> list[str]:
        """Return the addresses that are not members of the organization."""
        return [address for address in addresses if address not in self.members]

    def account_for(self, addresses) -> Account | None:
        """Return the account of the first counterpart address whose domain (or a parent domain) is mapped, else None."""
        for address in sorted(self.counterparts(addresses)):
            domain = domain_of(address)
            while domain:
                account = self.accounts_by_domain.get(domain)
                if account is not None:
                    return account
                # mail.customer.example also belongs to customer.example.
                domain = domain.partition(".")[2] if domain.count(".") > 1 else ""
        return None


def deal_for(*, account: Account, owner: Membership) -> Deal | None:
    """Return the account's open deal an activity belongs to, or None.

    The most recently created open deal that `owner` owns, else the most recently created
    open deal of anyone; deals deleted in the CRM are ignored.
    """
    return (
        Deal.objects.filter(account=account, status=DealStatus.OPEN, deleted_at__isnull=True)
        .annotate(is_own=Case(When(owner=owner, then=Value(0)), default=Value(1), output_field=IntegerField()))
        .order_by("is_own", "-created_at", "-id")
        .first()
    )
