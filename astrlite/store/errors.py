"""The store's one error type."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used; the message says why and what to do."""
