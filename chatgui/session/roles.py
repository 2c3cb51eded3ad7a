"""Who wrote a message."""
from __future__ import annotations

from chatgui.common.records import ValueEnum


class Role(ValueEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"   # only in what the model is sent (a tool's result); the chat keeps results in the reply's meta


ROLES = (Role.SYSTEM, Role.USER, Role.ASSISTANT)   # the roles of a chat's messages
