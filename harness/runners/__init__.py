"""Runners: one per task kind; each returns raw samples, never statistics."""
