"""Several Clarion processes acting as one system: one leader per role, shared rate buckets (docs/operations.md)."""
