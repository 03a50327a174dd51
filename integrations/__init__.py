"""Connections to the world outside SPM: the REST API, outgoing webhooks, activity capture, CRM sync."""
