from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """No public sign-up: members are created by an admin or by an import."""

    def is_open_for_signup(self, request):
        return False
