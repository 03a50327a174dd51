"""Outgoing webhooks: signed event deliveries with retries."""
