"""Who wrote a message: common/prompt.py's Role (what the model is sent uses the same one)."""
from __future__ import annotations

from chatgui.common.prompt import Role

ROLES = (Role.SYSTEM, Role.USER, Role.ASSISTANT)   # the roles of a chat's messages

__all__ = ["ROLES", "Role"]
