"""Database functions that SQLite and PostgreSQL spell differently."""

import statistics

from django.db import models
from django.db.backends.signals import connection_created
from django.dispatch import receiver


class DaysBetween(models.Func):
    """Fractional days from the first timestamp to the second (`end - start`)."""

    output_field = models.FloatField()
    arity = 2

    def as_sql(self, compiler, connection, **extra_context):
        start, end = self.source_expressions
        start_sql, start_params = compiler.compile(start)
        end_sql, end_params = compiler.compile(end)
        sql = f"(EXTRACT(EPOCH FROM ({end_sql} - {start_sql})) / 86400.0)"
        return sql, (*end_params, *start_params)

    def as_sqlite(self, compiler, connection, **extra_context):
        start, end = self.source_expressions
        start_sql, start_params = compiler.compile(start)
        end_sql, end_params = compiler.compile(end)
        return f"(julianday({end_sql}) - julianday({start_sql}))", (*end_params, *start_params)


class Median(models.Aggregate):
    """Median of a numeric expression; NULL over no rows."""

    function = "percentile_cont"
    name = "Median"
    output_field = models.FloatField()
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="spm_median", template="%(function)s(%(expressions)s)")


class _SqliteMedian:
    def __init__(self):
        self.values = []

    def step(self, value):
        if value is not None:
            self.values.append(value)

    def finalize(self):
        return statistics.median(self.values) if self.values else None


@receiver(connection_created)
def register_sqlite_functions(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate("spm_median", 1, _SqliteMedian)
