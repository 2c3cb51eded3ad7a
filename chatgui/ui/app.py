"""`chatgui` / `python -m chatgui`: open the main window. `chatgui serve ...`: the OpenAI-compatible
API server instead (chatgui.server.cli; the same as `chatgui-serve`)."""
from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    from chatgui.common.malloc import share_malloc_arenas
    from chatgui.desktop_entry import APP_ID, handle_cli

    share_malloc_arenas()        # before Qt or torch start a thread

    from chatgui.ui.options import parse_args

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["serve"]:
        # `chatgui serve ...` = `chatgui-serve ...`: the model behind the OpenAI API, no window and no
        # Qt. (On Windows `chatgui` is a GUI program without a console: use chatgui-serve there.)
        from chatgui.server.cli import main as serve
        return serve(argv[1:])
    code = handle_cli(argv)   # --install-desktop-entry / --uninstall-desktop-entry: no window
    if code is not None:
        return code
    options, qt_args = parse_args(argv)
    from PySide6.QtWidgets import QApplication

    from chatgui.assets import app_icon

    from chatgui.ui.common.i18n import install_translators, language_setting, resolve_language
    from chatgui.store import AlreadyRunning, StoreError
    from chatgui.ui.common.restart import restart_if_requested
    from chatgui.ui.common.single_instance import SingleInstance, lock_failed, second_start
    from chatgui.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("chatgui")
    app.setApplicationDisplayName("chatgui")
    app.setDesktopFileName(APP_ID)   # lets Wayland/X11 docks match the window to the menu entry
    app.setWindowIcon(app_icon())
    # The language, before any widget exists: CHATGUI_LANG, else the setting ("system": the OS's).
    translators = install_translators(resolve_language(language_setting()), app)   # noqa: F841 (kept alive)
    instance = SingleInstance()   # one chatgui per data folder, held until the app ends
    try:
        instance.acquire()
    except AlreadyRunning as err:
        return second_start(err, instance.folder)
    except StoreError as err:   # the folder cannot be locked: running anyway could lose chats
        return lock_failed(err, instance.folder)
    window = MainWindow(options)
    instance.attach(window)
    window.show()
    _close_on_signals(window)
    code = app.exec()
    instance.release()
    restart_if_requested(window)   # (after the lock is released: the new one takes it)
    if not window.engine_stopped:
        # The worker is inside a call that cannot be interrupted (loading or downloading a
        # model). Everything is saved; leave without waiting for it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _close_on_signals(window) -> None:
    """Ctrl+C in the terminal or a polite kill closes the window normally (so the chat is saved)."""
    from PySide6.QtCore import QTimer

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: window.close())
    # Python runs signal handlers only between bytecodes: wake it up now and then.
    timer = QTimer(window, interval=250)
    timer.timeout.connect(lambda: None)
    timer.start()


if __name__ == "__main__":
    raise SystemExit(main())
