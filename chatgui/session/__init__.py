"""The conversation core: typed messages, the chat's message tree, and the rules of a conversation
(what the model is sent, replay, branch, compare, a reply's metadata, failure wording).

No Qt and no torch, and nothing of chatgui but `chatgui.common`: the store persists these
objects, the window draws them, the engine and the server are sent what they produce.
"""
from chatgui.common.records import ReplyMeta

from .chat import ROOT, Chat
from .message import Message, Part, TextPart, new_id, tool_exchanges
from .meta import MessageMeta, UserMeta, meta_from_dict
from .roles import ROLES, Role
from .stored import ChatFormatError

__all__ = ["ROLES", "ROOT", "Chat", "ChatFormatError", "Message", "MessageMeta", "Part", "ReplyMeta", "Role",
           "TextPart", "UserMeta", "meta_from_dict", "new_id", "tool_exchanges"]
