"""People, roles, sessions and the audit log."""

from hotline.auth.audit import audit
from hotline.auth.model import ROLES, Role, User
from hotline.auth.users import (
    authenticate,
    create_user,
    get_user,
    hash_password,
    list_users,
    update_user,
)

__all__ = [
    "ROLES", "Role", "User", "audit", "authenticate", "create_user", "get_user",
    "hash_password", "list_users", "update_user",
]
