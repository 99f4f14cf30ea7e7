"""What Clarion needs to speak to AWS APIs as a client (S3 for import and export files, End User Messaging)."""
