from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    AGENT = "agent"  # 话务员
    EXPERT = "expert"  # 专家座席
    DISPATCHER = "dispatcher"  # 派单员
    LIAISON = "liaison"  # 承办单位联络员
    SUPERVISOR = "supervisor"  # 班长
    ADMIN = "admin"  # 系统管理员


ROLES: tuple[str, ...] = tuple(r.value for r in Role)
ROLE_NAMES_ZH = {
    "agent": "话务员",
    "expert": "专家座席",
    "dispatcher": "派单员",
    "liaison": "承办单位联络员",
    "supervisor": "班长",
    "admin": "系统管理员",
}


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    roles: frozenset[str]
    unit_code: str | None = None
    hotline_number: str | None = None
    active: bool = True

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "roles": sorted(self.roles),
            "unit_code": self.unit_code,
            "hotline_number": self.hotline_number,
            "active": self.active,
        }

    @classmethod
    def from_row(cls, row: Any) -> User:
        return cls(
            id=row["id"],
            username=row["username"],
            display_name=row["display_name"],
            roles=frozenset(row["roles"]),
            unit_code=row["unit_code"],
            hotline_number=row["hotline_number"],
            active=row["active"],
        )
