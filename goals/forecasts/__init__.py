"""Forecasting: categories, weighted pipeline, submissions and roll-up, system snapshots, accuracy.

- `categories`: the forecast category of each stage and deal, and the admin's and owners' changes.
- `pipeline`: weighted pipeline and category totals of a period from the deals as they are now.
- `rollup`: the reporting tree, append-only submissions and the roll-up through it.
- `snapshots`: the system forecast as of an instant, recorded at each period's horizons.
- `accuracy`: forecast accuracy and signed bias of past periods.
- `charts`: the forecast-versus-actual figure.
"""
