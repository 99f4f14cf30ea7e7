"""Clarion: a self-hosted successor to Amazon Pinpoint that speaks its API."""

__version__ = "0.1.0"
