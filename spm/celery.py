"""Celery application and the tenant-aware base task."""

import os

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spm.settings")

app = Celery("spm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class TenantTask(Task):
    """Run the task body inside the django-scopes scope of `organization_id`.

    Every tenant task takes `organization_id` as a keyword argument; the task
    loads nothing from another organization because the scope forbids it.
    """

    def __call__(self, *args, **kwargs):
        from django.utils import translation
        from django_scopes import scope

        from spm.models import Organization

        organization = Organization.objects.get(pk=kwargs["organization_id"])
        with scope(organization=organization), translation.override(organization.language):
            return super().__call__(*args, **kwargs)
