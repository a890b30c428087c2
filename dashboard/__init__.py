"""Operator-facing pages and the JSON API over the event store."""
