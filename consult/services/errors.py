"""Domain exceptions: raised by services, turned into a Japanese message or a 4xx by the view."""


class DomainError(Exception):
    """A rule refused the operation. ``message`` is Japanese and safe to show to staff."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidTransition(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class NotFound(DomainError):
    pass


class ValidationFailed(DomainError):
    pass


class TicketClosed(DomainError):
    def __init__(
        self, message: str = "完了した相談は変更できません。再開してから操作してください。"
    ):
        super().__init__(message)
