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
    # An integration calling the API (api/): its name goes into the audit log instead of a
    # staff member, and it follows the rules of the roles its token's scopes grant.
    integration: str | None = None
    grants: tuple[str, ...] = ()
    department_id: int | None = None  # an integration that is a department's own system

    @property
    def staff_id(self) -> int | None:
        return self.staff.id if self.staff else None

    def require(self, *roles: Role) -> Staff | None:
        if self.trusted:
            return self.staff
        if self.integration is not None:
            if not set(roles) & set(self.grants):
                raise PermissionDenied("この操作を行う権限がありません。")
            return None
        if self.staff is None or not self.staff.active or self.staff.role not in roles:
            raise PermissionDenied("この操作を行う権限がありません。")
        return self.staff

    def may(self, *roles: Role) -> bool:
        """Whether `require(*roles)` would pass, for rules that filter rather than refuse."""
        try:
            self.require(*roles)
        except PermissionDenied:
            return False
        return True

    @classmethod
    def for_integration(
        cls,
        name: str,
        address: str | None,
        grants: tuple[str, ...],
        department_id: int | None = None,
    ) -> Actor:
        """An API integration: no staff member, audited under its own name."""
        return cls(
            staff=None,
            address=address,
            integration=name,
            grants=grants,
            department_id=department_id,
        )

    @classmethod
    def command_line(cls) -> Actor:
        """Whoever runs `madoguchi` on the server: trusted, and audited under their OS login."""
        import getpass

        return cls(staff=None, address=f"cli:{getpass.getuser()}"[:64], trusted=True)


SYSTEM = Actor(staff=None, address="system", trusted=True)
