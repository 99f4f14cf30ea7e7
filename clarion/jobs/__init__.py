"""Import and export jobs (pinpoint.md §3.6): endpoints in from CSV/JSON files, out as gzip'd JSON lines."""
