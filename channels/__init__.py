"""Channels: where consultations come in and replies go out. Each plugs into consult."""

from flask import Flask


def register(app: Flask) -> None:
    from channels import booking, counter, email, line, phone

    counter.register(app)
    phone.register(app)
    email.register(app)
    line.register(app)
    booking.register(app)
