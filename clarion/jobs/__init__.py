"""Import and export jobs (as Pinpoint documents them): endpoints in from CSV/JSON files, out as gzip'd JSON lines."""
