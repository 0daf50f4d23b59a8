"""madoguchi's kernel: the app factory, staff, tickets, the outbox and the audit log."""

from consult.app import create_app

__all__ = ["create_app"]
