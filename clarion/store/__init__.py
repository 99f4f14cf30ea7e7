"""The only place that speaks SQL. One query module per domain; SQLite and PostgreSQL share every statement."""
