"""Channels: the transports that reach people, and what they need to know about addresses."""
