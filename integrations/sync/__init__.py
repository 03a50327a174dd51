"""Scheduled incremental sync from HubSpot and Pipedrive."""
