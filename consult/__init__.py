"""madoguchi's kernel: the app factory, staff, tickets, the outbox and the audit log."""

__all__ = ["create_app"]


def __getattr__(name: str):
    # Imported when asked for, so that `madoguchi` (consult.start) can switch the garbage
    # collector off before the application's modules load.
    if name == "create_app":
        from consult.app import create_app

        return create_app
    raise AttributeError(f"module 'consult' has no attribute {name!r}")
