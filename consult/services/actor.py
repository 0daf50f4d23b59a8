"""Who is acting and from where: passed to services so they never read the request."""

from __future__ import annotations

from dataclasses import dataclass

from consult.models import Role, Staff
from consult.services.errors import PermissionDenied

DESK_ROLES = (Role.CONSULTANT, Role.SUPERVISOR)


@dataclass(frozen=True)
class Actor:
    staff: Staff | None
    address: str | None = None
    # The system itself (the command line on the server, the worker): trusted, and audited.
    trusted: bool = False

    @property
    def staff_id(self) -> int | None:
        return self.staff.id if self.staff else None

    def require(self, *roles: Role) -> Staff | None:
        if self.trusted:
            return self.staff
        if self.staff is None or not self.staff.active or self.staff.role not in roles:
            raise PermissionDenied("この操作を行う権限がありません。")
        return self.staff

    @classmethod
    def command_line(cls) -> Actor:
        """Whoever runs `madoguchi` on the server: trusted, and audited under their OS login."""
        import getpass

        return cls(staff=None, address=f"cli:{getpass.getuser()}"[:64], trusted=True)


SYSTEM = Actor(staff=None, address="system", trusted=True)
