"""Activities captured from calendars (ICS) and mailboxes (IMAP)."""
