"""The REST API under /api/v1/ with per-organization tokens."""
