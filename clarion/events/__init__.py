"""Event ingestion (PutEvents) and the event log."""
