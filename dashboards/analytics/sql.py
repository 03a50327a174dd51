"""SQL the ORM cannot express: an aggregate over a window-function subquery, and a median, per vendor."""

from django.db import connection
from django.db.models import QuerySet


def median_sql(expression: str) -> str:
    """Return the SQL of the median of `expression`: percentile_cont on PostgreSQL, spm_median on SQLite.

    `spm_median` is registered on every SQLite connection by spm.db_functions.
    """
    if connection.vendor == "postgresql":
        return f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {expression})"
    return f"spm_median({expression})"


def datetime_param(value):
    """Adapt an aware datetime for a raw SQL parameter the way the ORM stores it (UTC text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(value)


def sql_from(inner: QuerySet, *, select: str, where: str = "", group_by: str = "", params=()) -> tuple[str, list]:
    """Build `SELECT select FROM (inner) AS inner_rows [WHERE where] [GROUP BY group_by]` and its parameters.

    `inner` is an ORM queryset, typically with Window annotations, whose
    `.values()` names the columns the outer query reads. Django cannot
    aggregate over a window function, so the outer query is written here.
    `params` fill the placeholders of `where`.
    """
    inner_sql, inner_params = inner.order_by().query.sql_with_params()
    sql = f"SELECT {select} FROM ({inner_sql}) AS inner_rows"
    if where:
        sql += f" WHERE {where}"
    if group_by:
        sql += f" GROUP BY {group_by}"
    return sql, [*inner_params, *params]


def rows_from(inner: QuerySet, *, select: str, where: str = "", group_by: str = "", params=()) -> list[dict]:
    """Run the query of `sql_from` and return its rows as dicts."""
    sql, all_params = sql_from(inner, select=select, where=where, group_by=group_by, params=params)
    with connection.cursor() as cursor:
        cursor.execute(sql, all_params)
        columns = [column[0] for column in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]
