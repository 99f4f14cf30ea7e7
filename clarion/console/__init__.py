"""The web console's own domain: console users and their roles, sessions, and the audit log of console changes.

The console's pages are a client of the same API boto3 uses; what the API layer needs from here is who a session
belongs to and which operations that person's role may call (docs/console.md).
"""
