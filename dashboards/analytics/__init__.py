"""Pipeline analytics: funnel, time in stage, velocity, stalled and slipped deals, waterfall, win/loss, activities.

Every module reads through set-based queries (aggregates, correlated
subqueries, window functions) that run on SQLite and PostgreSQL. Each takes a
`deals` queryset, the deals the member may see inside the organization's
scope (see `base.deal_universe`), so one definition serves the page, the
kpi_report command and the drill-down list, whose count equals the number.
"""
