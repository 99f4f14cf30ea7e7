"""Where work is distributed: a durable queue of (kind, JSON payload) items and the worker that runs them."""
