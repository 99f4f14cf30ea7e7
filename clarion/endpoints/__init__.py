"""Endpoints (devices, addresses) and the users they belong to."""
