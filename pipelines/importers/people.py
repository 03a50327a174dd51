"""People named in CRM exports: find or create their users and memberships in batches.

Exports name a deal's owner by e-mail address (Pipedrive users.csv), by id or by display
name (HubSpot, Salesforce, spreadsheets). A person is matched, in this order, by the
membership's external id, the user's e-mail address and the user's name within the
organization. Unknown people become members with the rep role, without team, territory,
manager or active dates, and their user is a new, active user without a usable password.
Existing members keep their role. `ImportResult.people_created` lists every member created.

An address that already belongs to a user without a membership in this organization (a
member of another organization, say) is never attached: that user keeps their password, so
attaching them would let an admin pull someone else's login into this organization by naming
an e-mail address in a file. Such a person is left out and `conflicts` contains a
`ForeignAccount`; the operator can add the account on purpose with
`import_people --add-existing-accounts`.

Importers call `ensure` only for the people that accepted rows name, after checking the
rows, so a rejected row never adds a person. A person named without an e-mail address gets
a generated one (`person_email`). When that address already belongs to someone with a
different name, in the same call or in the organization, the person is not created and
`conflicts` contains an `EmailConflict` instead: merging two names into one person, or quietly
splitting one person into two, would both credit deals to the wrong member.

A person whose e-mail address is invalid (Django's `validate_email`), or who would need a
value longer than its column (external id and name 200, e-mail address 254 characters), is
not matched or created either: `conflicts` contains an `InvalidPerson` with the reason, so
the importer rejects each row that names them instead of truncating the value.
"""

import logging
from dataclasses import dataclass

from django.utils.translation import gettext_noop

from pipelines.importers.base import (
    CreatedPerson,
    ImportResult,
    Message,
    PersonAccount,
    RowRejected,
)
from pipelines.importers.emails import TOO_LONG, email_check, generated_email_check
from pipelines.importers.maven import person_email
from spm.models import Membership, Organization, Role, User

logger = logging.getLogger(__name__)

# Column limits of what `ensure` stores besides the e-mail address: User.name and Membership.external_id.
MAX_NAME_LENGTH = User._meta.get_field("name").max_length
MAX_EXTERNAL_ID_LENGTH = Membership._meta.get_field("external_id").max_length


@dataclass(frozen=True)
class Person:
    """A person as an export names them; `key` is how the export refers to them (id, e-mail or name)."""

    key: str
    email: str = ""
    name: str = ""


class PeopleDirectory:
    """The organization's memberships, indexed for matching and extended with `ensure`."""

    def __init__(self, *, organization: Organization, result: ImportResult):
        self.organization = organization
        self.result = result
        self.by_external_id: dict[str, Membership] = {}
        self.by_email: dict[str, Membership] = {}
        self.by_name: dict[str, Membership] = {}
        # Keys of people `ensure` did not match or create: a value is invalid or too long, their
        # generated address belongs to another name, or their address belongs to a user outside
        # this organization.
        self.conflicts: dict[str, EmailConflict | ForeignAccount | InvalidPerson] = {}
        for membership in Membership.objects.filter(organization=organization).select_related("user").order_by("pk"):
            self._index(membership)

    def _index(self, membership: Membership) -> None:
        if membership.external_id:
            self.by_external_id.setdefault(membership.external_id, membership)
        self.by_email.setdefault(membership.user.email.lower(), membership)
        if membership.user.name:
            self.by_name.setdefault(membership.user.name.casefold(), membership)

    def find(self, person: Person) -> Membership | None:
        if person.key and person.key in self.by_external_id:
            return self.by_external_id[person.key]
        if person.email and person.email.lower() in self.by_email:
            return self.by_email[person.email.lower()]
        if person.name and person.name.casefold() in self.by_name:
            return self.by_name[person.name.casefold()]
        if "@" in person.key and person.key.lower() in self.by_email:
            return self.by_email[person.key.lower()]
        if person.key.casefold() in self.by_name:
            return self.by_name[person.key.casefold()]
        return None

    def ensure(self, people: list[Person]) -> dict[str, Membership]:
        """Return a membership for every person by key, creating users and rep memberships in two batch inserts.

        A person without an e-mail address gets `<name>@<org slug>.example`; the `.example`
        domain is reserved, so nothing is ever delivered there. New memberships store the
        person's key as external id, so the next import matches them even if the name changes.
        Some people are left out of the result and recorded in `conflicts`: those with an
        invalid or too long value, those whose generated address belongs to another name, and
        those whose address belongs to a user who is not a member of this organization.
        """
        found, missing, invalid = self._partition(people)
        self.conflicts.update(invalid)
        counts = self.result.counts["people"]
        counts.unchanged += len({membership.pk for membership in found.values()})
        if not missing:
            return found

        emails, generated_for, users = self._addresses(missing)
        for key, conflict in self._conflicts_find(missing, emails, generated_for, users).items():
            self.conflicts[key] = conflict
            del missing[key]
        new_users = []
        for key, person in missing.items():
            email = emails[key]
            if email not in users:
                user = User(email=email, name=person.name or "")
                user.set_unusable_password()
                users[email] = user
                new_users.append(user)
        User.objects.bulk_create(new_users, batch_size=1000)

        # A user may already belong to the organization under another key (e.g. an admin); every
        # other stored user was left out above as a foreign account.
        member_by_user = {
            membership.user_id: membership
            for membership in Membership.objects.filter(
                organization=self.organization, user_id__in=[user.pk for user in users.values()]
            ).select_related("user")
        }
        new_memberships = []
        for key in missing:
            user = users[emails[key]]
            membership = member_by_user.get(user.pk)
            if membership is None:
                membership = Membership(organization=self.organization, user=user, role=Role.REP, external_id=key)
                member_by_user[user.pk] = membership
                new_memberships.append(membership)
                self.result.people_created.append(
                    CreatedPerson(key=key, name=user.name, email=user.email, account=PersonAccount.NEW)
                )
            found[key] = membership
        Membership.objects.bulk_create(new_memberships, batch_size=1000)
        for membership in new_memberships:
            self._index(membership)
        counts.created += len(new_memberships)
        logger.info(
            "Import created people organization_id=%s users=%s memberships=%s conflicts=%s",
            self.organization.pk,
            len(new_users),
            len(new_memberships),
            len(self.conflicts),
        )
        return found

    def conflicts_check(self, people: list[Person]) -> dict[str, "EmailConflict | ForeignAccount | InvalidPerson"]:
        """Return the people `ensure` would leave out, with the reason, without writing anything."""
        _found, missing, invalid = self._partition(people)
        return {**invalid, **self._conflicts_find(missing, *self._addresses(missing))}

    def _partition(
        self, people: list[Person]
    ) -> tuple[dict[str, Membership], dict[str, Person], dict[str, "InvalidPerson"]]:
        """Split `people` by key into the members found, the people to create, and those with an invalid address.

        The address is checked before matching, so an invalid address in a file never
        matches a user whom an older version stored with that address.
        """
        found: dict[str, Membership] = {}
        missing: dict[str, Person] = {}
        invalid: dict[str, InvalidPerson] = {}
        for person in people:
            address = person.email or (person.key if "@" in person.key else "")
            if address:
                try:
                    email_check(address.lower(), "", address)
                except RowRejected as rejection:
                    invalid[person.key] = InvalidPerson(reason=rejection.reason, value=rejection.value)
                    continue
            membership = self.find(person)
            if membership is not None:
                found[person.key] = membership
            else:
                missing.setdefault(person.key, person)
        return found, missing, invalid

    def _conflicts_find(
        self, missing: dict[str, Person], emails: dict[str, str], generated_for: dict[str, str], users: dict[str, User]
    ) -> dict[str, "EmailConflict | ForeignAccount | InvalidPerson"]:
        """Return the people to create whose values do not fit, or whose address belongs to an outsider or another name.

        Values that do not fit are checked first, because they cannot be stored at all. The
        foreign account comes next, because writing the name the same way would not make such
        a person importable.
        """
        invalid = {}
        for key, person in missing.items():
            try:
                _new_person_check(person, emails[key], generated_for.get(key))
            except RowRejected as rejection:
                invalid[key] = InvalidPerson(reason=rejection.reason, value=rejection.value)
        foreign = {
            key: ForeignAccount(email=email)
            for key, email in emails.items()
            if key not in invalid and email in users and email not in self.by_email
        }
        remaining = {key: email for key, email in emails.items() if key not in invalid and key not in foreign}
        return {**invalid, **foreign, **_names_sharing_address(remaining, generated_for, users)}

    def _addresses(self, missing: dict[str, Person]) -> tuple[dict[str, str], dict[str, str], dict[str, User]]:
        """Return each person's address by key, the name of those whose address is generated, and the stored users."""
        emails = {}
        generated_for = {}
        for key, person in missing.items():
            email = (person.email or ("" if "@" not in key else key)).lower()
            if not email:
                name = person.name or key
                email = person_email(name, self.organization.slug) or f"person-{key}@{self.organization.slug}.example"
                generated_for[key] = name
            emails[key] = email
        users = {user.email.lower(): user for user in User.objects.filter(email__in=set(emails.values()))}
        return emails, generated_for, users

    def conflict_rejection(self, key: str, column: str, value: str | None = None) -> RowRejected:
        """Return the rejection of a row whose person `key` is in `conflicts`; `value` defaults to the key."""
        conflict = self.conflicts[key]
        if isinstance(conflict, InvalidPerson):
            return RowRejected(column, conflict.value if value is None else value, conflict.reason)
        if isinstance(conflict, ForeignAccount):
            return foreign_account_rejection(column, key if value is None else value, conflict.email)
        return RowRejected(
            column,
            key,
            gettext_noop(
                "the name %(name)s gives the same e-mail address %(email)s as %(other)s; if they are one person, "
                "write the name the same way, otherwise enter this person's e-mail address instead of the name"
            ),
            name=key,
            email=conflict.email,
            other=conflict.other,
        )


@dataclass(frozen=True)
class EmailConflict:
    """A generated address `email` that already belongs to the person named `other`."""

    email: str
    other: str


@dataclass(frozen=True)
class InvalidPerson:
    """A person with an invalid value, or one longer than its column: `value` as the file gives it and the `reason`."""

    value: str
    reason: Message


def _new_person_check(person: Person, email: str, generated_from: str | None) -> None:
    """Raise RowRejected if `person`, about to be created with `email`, has a value that does not fit its column.

    `generated_from` is the name the address was built from, or None when the file gives the address.
    """
    if len(person.key) > MAX_EXTERNAL_ID_LENGTH:
        raise RowRejected(
            "", person.key, TOO_LONG, max_length=MAX_EXTERNAL_ID_LENGTH
        )
    if len(person.name) > MAX_NAME_LENGTH:
        raise RowRejected(
            "", person.name, TOO_LONG, max_length=MAX_NAME_LENGTH
        )
    if generated_from is not None:
        generated_email_check(email, "", generated_from)


@dataclass(frozen=True)
class ForeignAccount:
    """An address `email` that belongs to a stored user without a membership in this organization."""

    email: str


def foreign_account_rejection(column: str, value: str, email: str) -> RowRejected:
    """Return the rejection of a row that names `email`, the address of a user outside this organization."""
    return RowRejected(
        column,
        value,
        gettext_noop(
            "the e-mail address %(email)s belongs to an existing SPM account outside this organization, so the "
            "import does not add it here; enter another e-mail address for this person, or ask the operator of "
            "this SPM installation to add the account with manage.py import_people --add-existing-accounts"
        ),
        email=email,
    )


def _names_sharing_address(
    emails: dict[str, str], generated_for: dict[str, str], users: dict[str, User]
) -> dict[str, EmailConflict]:
    """Return the keys whose generated address is taken by another name; the first person to claim it keeps it.

    Names that differ only in case are one person, as `PeopleDirectory.find` matches them.
    A stored user without a name cannot be distinguished, so that user is reused.
    """
    conflicts = {}
    claimed: dict[str, str] = {}
    for key, email in emails.items():
        name = generated_for.get(key)
        if name is None:
            claimed.setdefault(email, key)
            continue
        other = claimed.get(email)
        if other is None and email in users and users[email].name:
            other = users[email].name
        if other is not None and other.casefold() != name.casefold():
            conflicts[key] = EmailConflict(email=email, other=other)
            continue
        claimed.setdefault(email, name)
    return conflicts
