"""Everything chatgui keeps on disk: chats, settings, folders. No Qt and no torch here."""
from .atomic import atomic_write_bytes, atomic_write_text
from .backup import list_backups, restore_backup
from .errors import AlreadyRunning, DatabaseUnusable, StoreError, StoreProblem
from .export import EXPORT_FORMATS, ExportFormat, export_json, export_markdown
from .history import ChatSummary, HistoryStore
from .instance_lock import InstanceLock
from .legacy import MAX_CHAT_FILE_BYTES
from chatgui.common.paths import chats_dir, config_dir, data_dir, models_dir, settings_path
from .settings import AppSettings, load_settings, save_settings

__all__ = [
    "AlreadyRunning", "AppSettings", "Chat", "DatabaseUnusable", "InstanceLock", "list_backups", "restore_backup", "ChatFormatError", "ChatSummary", "HistoryStore", "MAX_CHAT_FILE_BYTES",
    "Message", "ROLES", "StoreError", "StoreProblem", "atomic_write_bytes", "atomic_write_text",
    "chats_dir", "config_dir", "data_dir", "EXPORT_FORMATS", "ExportFormat", "export_json", "export_markdown",
    "load_settings",
    "models_dir", "new_id", "save_settings", "settings_path",
]
