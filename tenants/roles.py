"""The four roles of contract §1 and the object permissions each one grants.

Roles nest: owner ⊃ admin ⊃ editor ⊃ viewer. A role is never checked by name in a view; views
ask for a permission and the role groups hold the permissions.
"""

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return ROLE_ORDER.index(self)

    def includes(self, other: "Role") -> bool:
        return self.rank >= other.rank


ROLE_ORDER = [Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER]
ROLE_CHOICES = [(role.value, role.value.capitalize()) for role in ROLE_ORDER]

# Per model (app_label.model), the codenames each role holds on every object of its tenant.
_ACTION_PERMS = {
    Role.VIEWER: ["view_action"],
    Role.EDITOR: ["change_action", "test_action"],
    Role.ADMIN: ["publish_action"],
    Role.OWNER: ["delete_action"],
}
_FLOW_PERMS = {
    Role.VIEWER: ["view_flow"],
    Role.EDITOR: ["change_flow"],
    Role.ADMIN: [],
    Role.OWNER: ["delete_flow"],
}


def _accumulate(grants: dict[Role, list[str]]) -> dict[Role, list[str]]:
    held: list[str] = []
    result = {}
    for role in ROLE_ORDER:
        held = held + grants[role]
        result[role] = list(held)
    return result


OBJECT_PERMS_BY_MODEL: dict[str, dict[Role, list[str]]] = {
    "actions_app.action": _accumulate(_ACTION_PERMS),
    "flows_app.flow": _accumulate(_FLOW_PERMS),
}

# Tenant-wide abilities that are not about one object.
TENANT_ABILITIES: dict[str, Role] = {
    "create_action": Role.EDITOR,
    "create_flow": Role.EDITOR,
    "manage_tokens": Role.ADMIN,
    "manage_members": Role.ADMIN,
}
