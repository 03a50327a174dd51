"""Celery application and the tenant-aware base task."""

import contextvars
import os

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spm.settings")

app = Celery("spm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Ids of the organizations whose KPI recompute the current request could not queue because
# the broker was unreachable, and which therefore wait for the hourly pending-recompute
# task. spm.middleware.BrokerStatusMiddleware sets an empty set for each request and warns
# the user when it is no longer empty. None outside requests (workers, commands).
recompute_deferred_organizations: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar(
    "recompute_deferred_organizations", default=None
)


class TenantTask(Task):
    """Run the task body inside the django-scopes scope of `organization_id`, in its language and time zone.

    Every tenant task takes `organization_id` as a keyword argument; the task
    loads nothing from another organization because the scope forbids it.
    """

    def apply_async(self, *args, **kwargs):
        """Send the task; raise kombu's OperationalError when Redis cannot be reached.

        The Redis result backend subscribes to the task's result before the message
        is sent. With Redis down it gives up with a RuntimeError that wraps the
        connection error, which callers would not recognize as "broker unavailable".
        """
        from kombu.exceptions import OperationalError

        try:
            return super().apply_async(*args, **kwargs)
        except RuntimeError as error:
            if isinstance(error.__cause__, getattr(self.backend, "connection_errors", ())):
                raise OperationalError(str(error.__cause__)) from error
            raise

    def __call__(self, *args, **kwargs):
        from django.utils import timezone, translation
        from django_scopes import scope

        from spm.models import Organization

        organization = Organization.objects.get(pk=kwargs["organization_id"])
        # The organization's time zone, as spm.middleware.OrganizationMiddleware sets it for a request,
        # so that timezone.localdate() in a task returns the organization's date.
        with (
            scope(organization=organization),
            translation.override(organization.language),
            timezone.override(organization.tzinfo),
        ):
            return super().__call__(*args, **kwargs)
