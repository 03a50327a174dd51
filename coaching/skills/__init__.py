"""Competency rubrics, skill assessments and development plans measured from the data."""
