"""Import and export jobs (Pinpoint's "Importing segments" guide): endpoints in from CSV/JSON files, out as gzip'd JSON
lines."""
