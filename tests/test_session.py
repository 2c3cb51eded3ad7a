"""The conversation core (chatgui/session): its layer, the typed message and its stored form, the
history the model is sent (tool calls included), and the rules taken out of the Qt controllers."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_session_imports_only_common():
    code = ("import sys, chatgui.session, chatgui.session.stored; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6') or m.startswith('chatgui.')"
            " and not m.startswith(('chatgui.common', 'chatgui.session'))]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
