"""The main window: chat list, conversation (under the model pill, or the welcome card while no
model can answer), input, the settings side panel (a gear button shows it; the sampling inspector
is its second tab), status bar, menus.

It wires the parts together and decides which chat is shown; ChatLibrary keeps the chats,
ReplyController the streaming reply, ModelController the model.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QHBoxLayout, QMainWindow, QSplitter, QStackedWidget,
                               QTabWidget, QToolButton, QVBoxLayout, QWidget)

from chatgui.common.backends import backend_type
from chatgui.store import EXPORT_FORMATS, AppSettings, ExportFormat, HistoryStore, load_settings
from chatgui.common.records import ReplyMeta
from chatgui.session import Chat, Role, UserMeta

from chatgui.ui.chat.library import TRASH_DAYS, ChatLibrary, title_of
from chatgui.ui.chat.history_actions import HistoryActions
from chatgui.ui.chat.migration import LegacyMigration
from chatgui.ui.common.file_dialogs import remember_folder, start_folder
from chatgui.ui.common.jobs import BackgroundJobs
from chatgui.ui.chat.action_icons import action_icon
from chatgui.ui.chat.chat_list import ChatListPanel
from chatgui.ui.chat.conversation_view import ConversationView
from chatgui.ui.documents.controller import DocumentsController
from chatgui.ui.explain.controller import ExplainController
from chatgui.ui.settings.language_menu import build_language_menu
from chatgui.ui.settings.theme_menu import ThemeMenu
from chatgui.ui.chat.composer import InputBar
from chatgui.ui.backends.controller import BackendController
from chatgui.ui.backends.model_controller import ModelController
from chatgui.ui.backends.model_pill import ModelPill
from chatgui.ui.common.notices import NoticeArea
from chatgui.ui.models.welcome_card import WelcomeCard
from chatgui.ui.models.window import ModelsFeature
from chatgui.ui.options import LaunchOptions, options_from_env
from chatgui.ui.chat.reply_controller import ReplyController
from chatgui.ui.tools.tool_replies import ToolsFeature
from chatgui.ui.tools.tools_dialog import ToolsDialog
from chatgui.ui.settings.panel import SettingsPanel
from chatgui.ui.common.status_bar import StatusBar
from chatgui.ui.common.theme import apply_theme
from chatgui.ui.settings.save_manager import SETTINGS, SaveManager
from chatgui.ui.settings.window_state import restore_window, store_window
from chatgui.ui.backends.engine_client import EngineClient

SHUTDOWN_WAIT_MS = 1500
SAVE_WAIT_S = 10.0
MIN_CHAT_WIDTH = 480    # side panels give way before the conversation gets narrower than this
MIN_LIST_WIDTH = 160
PANEL_WINDOW_WIDTH = 1100   # in a narrower window the settings panel starts closed (the gear opens it)
SIDE_PANEL_MIN_WIDTH = 240


class MainWindow(QMainWindow):
    def __init__(self, options: LaunchOptions | None = None, settings: AppSettings | None = None,
                 store: HistoryStore | None = None):
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("chatgui")
        self.options = options or options_from_env()
        setting_problems: list = []
        self.settings = settings or load_settings(problems=setting_problems)
        self.store = store or HistoryStore(migrate_later=True)   # old chat files: moved after the window shows
        self.current: Chat | None = None
        self._count_request = 0
        self.engine_stopped = False
        self._started = False      # the model is chosen once the window is first shown
        self._closed = False
        self._dock_gave_way = False      # the settings panel was hidden to leave the chat its room
        self._dock_width = 300           # its width before that
        # A resize is fitted again once the layout has settled: during the resize event the
        # docks can still have their old widths, and nothing else would fit them again until the
        # next resize.
        self._refit = QTimer(self, singleShot=True, interval=0)
        self._refit.timeout.connect(self._refit_settled)
        self._panel_by_hand = False      # shown from the View menu: stays until the window is resized again
        self._list_wish = 230            # the chat list width the user chose (set again below)
        # Made last: Qt's resize and move events come while the window is being built.
        self.autosave: SaveManager | None = None
        self.explain: ExplainController | None = None

        self._build()
        self.library = ChatLibrary(self.store, self.notices, self.status, setting_problems)
        self.jobs = BackgroundJobs()   # store work that may take a while: search, import, export
        self._search: tuple[int, str, set[str] | None] = (0, "", None)   # (request, query, matching ids)
        self.history_actions = HistoryActions(self)   # import, export, a database that cannot be used
        self.library.empty_old_trash()
        self.engine = EngineClient(self)
        self.models_page = ModelsFeature(self, lambda path: self.model_controller.load(path, remember=True),
                                         self.panel.set_installed_models)
        self.model_controller = ModelController(self.engine, self.settings, self.options, self.panel, self.status,
                                      self.notices, self.models_page.downloads, self, pill=self.pill,
                                      card=self.welcome)
        self.models_page.removed = self.model_controller.model_removed
        self.models_page.successor = self.model_controller.successor
        self.backend = BackendController(self.engine, self.settings, self.options, self.panel, self.status,
                                         self.notices, self.model_controller, self)
        self.replies = ReplyController(self.engine, self.view, self)
        self.documents = DocumentsController(self)   # attached files, knowledge folders (issue 32)
        self.tools = ToolsFeature(self.engine, self.view, self.settings, self.store, self)   # issue 31
        self.replies.tools = self.tools
        self.panel.models_requested.connect(self.open_models)
        # token view, inspector, branch, replay, compare
        self.explain = ExplainController(self, engine=self.engine, replies=self.replies, model_controller=self.model_controller,
                                         panel=self.panel, view=self.view, input_bar=self.input_bar,
                                         notices=self.notices, status=self.status, settings=self.settings,
                                         current_chat=lambda: self.current, save_chat=self.save_chat,
                                         show_current=self.show_current)
        self.theme_menu = ThemeMenu(self, self.view_menu)
        self.view_menu.addMenu(self.theme_menu)
        self.language_menu = build_language_menu(self, self.view_menu)   # last in View
        self._connect()
        self._connect_backend_look()
        restore_window(self, self.settings)
        # the chat list's width as the user left it: it narrows for a narrow window and comes
        # back when there is room again
        self._list_wish = max(MIN_LIST_WIDTH, self.main_split.sizes()[0])
        self.main_split.splitterMoved.connect(self._list_moved_by_hand)
        self._side_panels_in_place()
        if not self.settings.window_geometry:
            self._fit_to_screen()
        self.autosave = SaveManager(self)
        self.autosave.register(SETTINGS, lambda: store_window(self, self.settings))
        self._connect_autosave()
        self._open_first_chat()
        self.migration = LegacyMigration(self.store, self.notices, self.refresh_chat_list, self._migration_ended, self)
        self.migration.start_if_needed()

    # -- building --------------------------------------------------------------------------
    def _build(self) -> None:
        apply_theme(self.settings.theme)
        self.chat_list = ChatListPanel()
        self.view = ConversationView()
        self.input_bar = InputBar()
        self.notices = NoticeArea()
        self.panel = SettingsPanel(self)
        self.status = StatusBar(self)
        self.status.model_label.hide()   # the model pill shows the model: one place for its name
        self.setStatusBar(self.status)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.panel)
        self.setTabPosition(Qt.DockWidgetArea.RightDockWidgetArea, QTabWidget.TabPosition.North)
        self.pill = ModelPill()
        self.welcome = WelcomeCard()

        right = QWidget()
        right.setObjectName("chatColumn")
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self._top_bar())
        column.addWidget(self.notices)
        self.chat_stack = QStackedWidget()   # the conversation, or the welcome card
        self.chat_stack.setObjectName("chatStack")
        self.chat_stack.addWidget(self.view)
        self.chat_stack.addWidget(self.welcome)
        column.addWidget(self.chat_stack, 1)
        column.addWidget(self.input_bar)   # grows with its text (composer.MAX_LINES)
        self.main_split = QSplitter(Qt.Orientation.Horizontal)
        self.main_split.addWidget(self.chat_list)
        self.main_split.addWidget(right)
        self.main_split.setStretchFactor(1, 1)
        self.main_split.setSizes([230, 700])
        self.setCentralWidget(self.main_split)
        self.resize(1200, 780)
        self._build_menus()

    def _top_bar(self) -> QWidget:
        """Above the conversation: the model pill on the left, the settings gear on the right."""
        bar = QWidget()
        bar.setObjectName("topBar")
        bar.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        row = QHBoxLayout(bar)
        row.setContentsMargins(12, 6, 8, 6)
        row.addWidget(self.pill, 1, Qt.AlignmentFlag.AlignLeft)
        self.inspector_button = QToolButton()   # wired to the inspector's View action in _connect
        self.inspector_button.setObjectName("inspectorButton")
        self.inspector_button.setIcon(action_icon("inspector"))
        self.inspector_button.setCheckable(True)
        self.inspector_button.setAutoRaise(True)
        self.inspector_button.setToolTip(self.tr("Sampling inspector: how the next token is chosen (Ctrl+Shift+I)"))
        self.inspector_button.setAccessibleName(self.tr("Sampling inspector"))
        self.settings_button = QToolButton()
        self.settings_button.setObjectName("settingsButton")
        self.settings_button.setIcon(action_icon("settings"))
        self.settings_button.setCheckable(True)
        self.settings_button.setAutoRaise(True)
        self.settings_button.setToolTip(self.tr("Settings panel: model, system prompt, sampling (Ctrl+,)"))
        self.settings_button.setAccessibleName(self.tr("Settings panel"))
        row.addWidget(self.inspector_button)
        row.addWidget(self.settings_button)
        return bar

    def _side_panels_in_place(self) -> None:
        """The settings panel and the inspector are side panels without title bars: never floating
        over the chat (the composer stays visible), tabs of one column on the right."""
        for dock in (self.panel, self.explain.dock):
            dock.setTitleBarWidget(QWidget())
            # closable only: its View action (and the gear) hide it; it can neither move nor float
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable)
            if dock.isFloating():   # as an older version may have saved it
                dock.setFloating(False)
            if self.dockWidgetArea(dock) != Qt.DockWidgetArea.RightDockWidgetArea:
                self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
            dock.setMinimumWidth(SIDE_PANEL_MIN_WIDTH)
            dock.widget().setMinimumWidth(SIDE_PANEL_MIN_WIDTH - 20)   # (the inspector asks for 260)
        # The settings scroll only up and down: the panel is never narrower than its fields, which
        # would cut them off at the window's edge.
        body = self.panel.widget().widget()
        self.panel.setMinimumWidth(max(SIDE_PANEL_MIN_WIDTH, body.minimumSizeHint().width() + 16))
        if self.explain.dock not in self.tabifiedDockWidgets(self.panel):
            self.tabifyDockWidget(self.panel, self.explain.dock)

    def _fit_to_screen(self) -> None:
        """The first start: the default size, or the screen's free area if that is smaller."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        free = screen.availableGeometry()
        frame = 40   # room for the window's title bar and borders
        self.resize(min(self.width(), free.width() - 16), min(self.height(), free.height() - frame))
        self.move(free.left() + max(0, (free.width() - self.width()) // 2),
                  free.top() + max(0, (free.height() - self.height() - frame) // 2))

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu(self.tr("&File"))
        file_menu.setObjectName("fileMenu")   # found by name, not by its (translated) title
        self.new_action = self._action(file_menu, self.tr("&New chat"), QKeySequence.StandardKey.New, self.new_chat)
        self.models_action = self._action(file_menu, self.tr("&Models…"), QKeySequence("Ctrl+M"), self.open_models)
        self.trash_action = self._action(file_menu, self.tr("&Trash…"), None, self.open_trash)
        self.knowledge_action = self._action(file_menu, self.tr("&Knowledge folders…"), None,
                                             lambda: self.documents.open_page())
        file_menu.addSeparator()
        for fmt, spec in EXPORT_FORMATS.items():     # one per export format (store/export.py)
            self._action(file_menu, self.tr("Export as {format}…").format(format=spec.name), None,
                         lambda _checked=False, fmt=fmt: self.export_dialog(fmt))
        self._action(file_menu, self.tr("&Import chats…"), None, lambda: self.history_actions.import_dialog())
        file_menu.addSeparator()
        self._action(file_menu, self.tr("&Quit"), QKeySequence("Ctrl+Q"), self.close)
        chat_menu = self.menuBar().addMenu(self.tr("&Chat"))
        chat_menu.setObjectName("chatMenu")
        self._action(chat_menu, self.tr("&Search chats"), QKeySequence("Ctrl+F"), self.chat_list.focus_search)
        self.stop_action = self._action(chat_menu, self.tr("S&top reply"), QKeySequence(Qt.Key.Key_Escape),
                                        self.stop_reply)
        self.stop_action.setEnabled(False)
        self.candidates_action = self._action(chat_menu, self.tr("&Generate 3 answers"), QKeySequence("Ctrl+Shift+G"),
                                              lambda: self.generate_answers(3))
        self.candidates_action.setToolTip(self.tr("Write three answers to your last message at once; browse them "
                                                  "with < >"))
        self._action(chat_menu, self.tr("&Rename chat"), QKeySequence(Qt.Key.Key_F2), self.chat_list.edit_current_title)
        self._action(chat_menu, self.tr("T&ools…"), None, self.open_tools)
        view_menu = self.menuBar().addMenu(self.tr("&View"))
        view_menu.setObjectName("viewMenu")
        self.view_menu = view_menu
        toggle = self.panel.toggleViewAction()
        toggle.setText(self.tr("&Settings panel"))
        toggle.setShortcut(QKeySequence("Ctrl+,"))
        toggle.triggered.connect(self._on_panel_toggled_by_hand)
        view_menu.addAction(toggle)
        self.addAction(toggle)
        self.settings_button.clicked.connect(lambda: toggle.trigger())
        self.panel.visibilityChanged.connect(lambda _v: self.settings_button.setChecked(self.panel.isVisible()))

    def _action(self, menu, text, shortcut, slot) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)   # shortcuts work even with the menu bar hidden
        return action

    def _connect(self) -> None:
        self.input_bar.send_clicked.connect(self.send_message)
        self.input_bar.stop_clicked.connect(self.stop_reply)
        self.chat_list.chat_selected.connect(self.open_chat)
        self.chat_list.new_chat_requested.connect(self.new_chat)
        self.chat_list.delete_requested.connect(self.delete_chat)
        self.chat_list.renamed.connect(self.rename_chat)
        self.chat_list.export_requested.connect(self.export_chat_dialog)
        self.model_controller.welcome_changed.connect(self._show_welcome)
        self.model_controller.models_requested.connect(self.open_models)
        self.model_controller.server_requested.connect(self.show_server_settings)
        self.chat_list.search_changed.connect(self.search_chats)
        self.view.regenerate_requested.connect(self.regenerate)
        self.view.edit_submitted.connect(self.edit_and_resend)
        self.view.sibling_requested.connect(self.show_sibling)
        self.view.widgets_changed.connect(self.replies.attach)   # the streaming reply scrolled back into view
        self.replies.busy_changed.connect(self._on_busy_changed)
        self.replies.notice.connect(lambda key, kind, text: self.notices.show_notice(key, text, kind))
        self.replies.save_requested.connect(self.save_chat)
        self.replies.chat_changed.connect(lambda chat: chat is self.current and self.show_current())
        self.replies.started.connect(lambda info: self.status.set_context_used(info["prompt_tokens"]))
        self.replies.finished.connect(self._on_reply_finished)
        self.replies.batch_progress.connect(self.status.show_batch_progress)
        self.tools.notice.connect(lambda key, kind, text: self.notices.show_notice(key, text, kind))
        self.model_controller.model_ready.connect(lambda _info: self._count_context())
        self.model_controller.model_ready.connect(lambda info: self.models_page.set_in_use(info.path if info.is_local else None))
        self.model_controller.waiting_changed.connect(self._update_send_button)
        self._update_send_button()
        self.engine.worker.tokens_counted.connect(self._on_tokens_counted)
        self.panel.system_prompt_edited.connect(self._on_system_prompt_edited)
        self.panel.default_system_prompt_set.connect(self._on_default_system_prompt)
        # Flipping through chats prepares only the one the user stays on.
        self._prepare_timer = QTimer(self, singleShot=True, interval=400)
        self._prepare_timer.timeout.connect(self._prepare_current)

    def _connect_backend_look(self) -> None:
        """While a server answers, the local model's sections are out of the way."""
        group = self.backend.group
        self.panel.mark_local_only(self.backend.serve_group)
        local = lambda: not backend_type(group.kind_choice()).is_server   # noqa: E731
        group.kind.currentIndexChanged.connect(lambda _i: self.panel.show_local_sections(local()))
        self.panel.show_local_sections(local())
        self.model_controller.model_ready.connect(self.panel.show_model_context)

    def _connect_autosave(self) -> None:
        """Every change of a setting is saved within a second (see SaveManager)."""
        save = self.autosave.schedule
        self.backend.settings_changed.connect(save)
        self.tools.settings_changed.connect(save)
        self.panel.sampling_changed.connect(save)
        self.panel.default_system_prompt_set.connect(save)
        self.panel.visibilityChanged.connect(save)
        self.panel.dockLocationChanged.connect(save)
        self.model_controller.model_ready.connect(save)
        self.main_split.splitterMoved.connect(save)
        self.explain.token_view_action.toggled.connect(save)
        self.explain.dock.visibilityChanged.connect(lambda _v: QTimer.singleShot(0, self._fit_side_panels))
        self.panel.visibilityChanged.connect(lambda _v: QTimer.singleShot(0, self._fit_side_panels))
        inspector = self.explain.dock
        self.inspector_button.clicked.connect(lambda: inspector.toggleViewAction().trigger())
        inspector.visibilityChanged.connect(lambda _v: self.inspector_button.setChecked(inspector.isVisible()))

    def record_last_chat(self) -> None:
        """The chat to open at the next start: the one shown, if it has anything in it."""
        chat = self.current
        self.settings.last_chat_id = chat.id if chat is not None and chat.messages else None

    def resizeEvent(self, event):   # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit_side_panels()
        self._refit.start()
        if self.autosave is not None:
            self.autosave.schedule()

    def moveEvent(self, event):   # noqa: N802 (Qt override)
        super().moveEvent(event)
        if self.autosave is not None:
            self.autosave.schedule()

    def _on_panel_toggled_by_hand(self, shown: bool) -> None:
        self._panel_by_hand = shown
        if shown:
            self._dock_gave_way = False

    def _refit_settled(self) -> None:
        self._fit_side_panels()
        # what showing the panel by hand made Qt do to the window is over: later resizes count
        self._panel_by_hand = False

    def _fit_side_panels(self) -> None:
        """Side panels give way before the chat does: first the chat list narrows, then the
        settings panel is put away (the gear brings it back). Below PANEL_WINDOW_WIDTH it is put
        away anyway, so a narrow window starts with the whole width for the chat; it comes back by
        itself once the window is wide enough again. Shown by hand, it stays until the next resize."""
        panel = self.panel
        inspector = self.explain.dock if self.explain is not None else None
        # the side column: the two panels are tabs of it, so it is as wide as the one shown
        list_width = self._list_width_beside(panel, inspector)
        side = [d for d in (panel, inspector) if d is not None and d.isVisible()]
        room = self.width() - list_width - max((d.width() for d in side), default=0) - 16
        # (isHidden, not isVisible: before the window is first shown, a size below the limit
        # already puts the panel away, so the first frame has the whole width for the chat)
        if not panel.isHidden() and not self._panel_by_hand and (room < MIN_CHAT_WIDTH
                                                                 or self.width() < PANEL_WINDOW_WIDTH):
            self._dock_width = panel.width()
            self._dock_gave_way = True
            panel.hide()
            # (hidden before the window was first shown, no hide event tells its View action)
            panel.toggleViewAction().setChecked(False)
            self.settings_button.setChecked(False)
        elif (self._dock_gave_way and panel.isHidden() and self.width() >= PANEL_WINDOW_WIDTH
              and self.width() - list_width - self._dock_width - 16 >= MIN_CHAT_WIDTH):
            self._dock_gave_way = False
            panel.show()
        # with the settings panel put away, the list takes back the width it gave up
        list_width = self._list_width_beside(panel, inspector)
        if self.main_split.count() and list_width != self.main_split.sizes()[0]:
            self.main_split.setSizes([list_width, max(MIN_CHAT_WIDTH, self.width() - list_width)])
        # What stays open of the side column (the inspector, the settings shown by hand) narrows.
        shown = [d for d in (panel, inspector) if d is not None and d.isVisible()]
        room = self.width() - list_width - max((d.width() for d in shown), default=0) - 16
        if shown and room < MIN_CHAT_WIDTH:
            width = max(SIDE_PANEL_MIN_WIDTH, max(d.width() for d in shown) - (MIN_CHAT_WIDTH - room))
            self.resizeDocks(shown, [width] * len(shown), Qt.Orientation.Horizontal)

    def _list_width_beside(self, *docks) -> int:
        """The chat list's width with these side panels (those shown) beside it: the width the
        user chose, less what the conversation needs, never under MIN_LIST_WIDTH."""
        side = max((d.width() for d in docks if d is not None and d.isVisible()), default=0)
        return max(MIN_LIST_WIDTH, min(self._list_wish, self.width() - side - 16 - MIN_CHAT_WIDTH))

    def _list_moved_by_hand(self, position: int, _index: int) -> None:
        self._list_wish = max(MIN_LIST_WIDTH, position)

    def showEvent(self, event):   # noqa: N802 (Qt override)
        super().showEvent(event)
        self._fit_side_panels()
        # In case no paint event ever comes (a window started minimized, say).
        QTimer.singleShot(500, self._start_backend)

    def paintEvent(self, event):   # noqa: N802 (Qt override)
        super().paintEvent(event)
        # Only after the first frame is painted may the worker import torch: loading its native
        # libraries holds Python's GIL for long stretches, which would hold up that frame by ~0.4 s.
        QTimer.singleShot(0, self._start_backend)

    def _start_backend(self) -> None:
        if not self._started:
            self._started = True
            self.backend.start()   # the saved server, or ModelController.start

    # -- chats -----------------------------------------------------------------------------
    def _open_first_chat(self) -> None:
        self.refresh_chat_list()
        last = self.settings.last_chat_id
        if last and last in self.chat_list.chat_ids():
            self.open_chat(last)
        else:
            self.new_chat()

    def _show_welcome(self, shown: bool) -> None:
        self.chat_stack.setCurrentWidget(self.welcome if shown else self.view)

    def show_server_settings(self) -> None:
        """The settings panel, at its server choice (from the welcome card)."""
        self._panel_by_hand = True
        self.panel.show()
        self.panel.raise_()
        self.backend.group.kind.setFocus(Qt.FocusReason.OtherFocusReason)
        self.backend.group.kind.showPopup()

    def new_chat(self) -> None:
        if self.current is not None and not self.current.messages:
            self.show_current()   # an empty new chat is already open
            return
        chat = Chat(system_prompt=self.settings.system_prompt or None)
        self.library.add(chat)
        self.current = chat
        self.show_current()
        self.input_bar.input.setFocus()

    def open_chat(self, chat_id: str) -> None:
        if self.current is not None and self.current.id == chat_id:
            return
        chat = self.library.get(chat_id)
        if chat is None:
            self.refresh_chat_list()
            return
        previous, self.current = self.current, chat
        if previous is not None and not previous.messages:
            self.library.forget(previous.id)   # an empty new chat is not kept
        self.show_current()
        if self.chat_list.search_query():
            self._reveal_search_match(self.chat_list.search_query())

    def _reveal_search_match(self, query: str) -> None:
        """Opened from a search: show the first message holding the query, marked (another
        version's, if only that one has it), instead of the chat's end."""
        chat, needle = self.current, query.casefold()
        path = chat.active_path()
        found = next((m for m in path if needle in m.content.casefold()), None)
        if found is None:
            found = next((m for m in chat.messages.values() if needle in m.content.casefold()), None)
            if found is None:
                return   # the title matched
            chat.select(found.id)
            self.show_current(scroll_to_end=False)
        self.view.reveal(found.id, query)

    def show_current(self, scroll_to_end: bool = True) -> None:
        chat = self.current
        self.view.show_chat(chat, busy=self.replies.busy, scroll_to_end=scroll_to_end)
        self.replies.attach()
        self.panel.set_system_prompt((chat.system_prompt if chat else None) or "")
        self.setWindowTitle(f"{title_of(chat)} — chatgui" if chat and chat.messages else "chatgui")
        self.documents.chat_shown(chat)
        self.refresh_chat_list()
        self._count_context()
        self.explain.chat_shown()
        if self.autosave is not None:
            self.autosave.schedule()   # the open chat is reopened after a crash too

    def refresh_chat_list(self) -> None:
        query = self.chat_list.search_query()
        _request, searched, matching = self._search
        if query and searched != query:
            return   # the search for it runs: the list changes when it is done
        entries = self.library.entries(query, self.current, matching if query else None)
        self.chat_list.set_chats(entries, self.current.id if self.current else None)

    def search_chats(self, query: str) -> None:
        """Search all chats' text off the GUI thread; the list shows the result when it comes
        (only the newest search counts: typing on makes the older ones moot)."""
        query = query.strip()
        request = self._search[0] + 1
        self._search = (request, "", None)
        if not query:
            self.view.clear_highlights()
            self.refresh_chat_list()
            return

        def found(ids, error) -> None:
            if self._search[0] != request or self._closed:
                return
            if error is not None:
                self.library.report_store_error(error, "list-error")
            self._search = (request, query, set(ids or ()))
            self.refresh_chat_list()
            if self.current is not None and self.current.id in self._search[2]:
                self._reveal_search_match(query)   # the open chat has it: show it there too

        store = self.library.store
        self.jobs.run(lambda: store.search(query), found)

    def rename_chat(self, chat_id: str, title: str) -> None:
        chat = self.library.get(chat_id)
        if chat is None:
            return
        chat.title = title.strip()
        if chat.messages:
            self.save_chat(chat)
        if chat is self.current:
            self.setWindowTitle(f"{title_of(chat)} — chatgui")
        QTimer.singleShot(0, self.refresh_chat_list)   # not while the list's editor is closing

    def delete_chat(self, chat_id: str) -> bool:
        """Move the chat to the trash: no question asked, Undo in the notice, File > Trash… later."""
        chat = self.library.get(chat_id, report=False)
        title = title_of(chat) if chat else self.tr("this chat")
        if self.replies.active is not None and self.replies.active.chat.id == chat_id:
            self.replies.stop()
        kept = chat is not None and bool(chat.messages)
        if not self.library.delete(chat_id):
            return False
        if kept:
            self.notices.show_notice("deleted", self.tr("“{title}” was moved to the trash (kept {days} days).").format(
                title=title, days=TRASH_DAYS), "info", [(self.tr("Undo"), lambda: self.restore_chat(chat_id))])
        if self.current is not None and self.current.id == chat_id:
            self.current = None
            remaining = self.chat_list.chat_ids()
            remaining = [i for i in remaining if i != chat_id]
            if remaining:
                self.open_chat(remaining[0])
            else:
                self.new_chat()
        self.refresh_chat_list()
        return True

    def restore_chat(self, chat_id: str) -> bool:
        """Take a chat out of the trash and open it."""
        if not self.library.restore(chat_id):
            return False
        self.notices.remove("deleted")
        self.open_chat(chat_id)
        self.refresh_chat_list()
        return True

    def open_trash(self):
        from chatgui.ui.chat.trash import TrashDialog
        dialog = TrashDialog(self.store, self.restore_chat, self)
        dialog.show()
        return dialog

    def save_chat(self, chat: Chat) -> bool:
        return self.library.save(chat)

    # -- sending and replies ---------------------------------------------------------------
    def send_message(self, text: str | None = None) -> bool:
        text = self.input_bar.text() if text is None else text
        if self.replies.busy:
            why = self.tr("A reply is still being written: wait for it, or stop it (Esc). Your message stays in "
                          "the box.")
            self.status.showMessage(why, 6000)
            self.input_bar.show_hint(why)
            return False
        if not text.strip() and not self.documents.pending:
            return False
        if self.documents.send_blocked_reason():
            self.input_bar.show_hint(self.documents.send_blocked_reason())
            return False
        if not self.model_controller.check_ready():   # the model is still on its way: the text stays in the box
            return False
        if self.current is None:
            self.new_chat()
        if not self.documents.takes_over(self.current, text):   # else it sends with the files' prompt
            self.post_message(self.current, text)
        return True

    def post_message(self, chat: Chat, text: str, meta: UserMeta | None = None, edit_of: str | None = None) -> None:
        """Add the user message (beside `edit_of`, the one it edits) and start the reply to it."""
        if edit_of is not None:
            user = chat.add_message(chat.messages[edit_of].parent_id, Role.USER, text, meta)
        else:
            user = chat.append(Role.USER, text, meta)
        chat.select(user.id)
        if not chat.title:
            chat.title = chat.title_from_first_message()
        if meta is None and edit_of is None:
            self.input_bar.clear()
        self._start_reply(chat, user.id)

    def regenerate(self, assistant_id: str) -> None:
        chat = self.current
        if self.replies.busy or chat is None or assistant_id not in chat.messages or not self.model_controller.check_ready():
            return
        parent = chat.messages[assistant_id].parent_id
        if parent is not None:
            self._hint_if_repeating()
            self._start_reply(chat, parent)

    def generate_answers(self, n: int = 3) -> list[str]:
        """n answers to the last question of this chat, decoded together (a batch); the first is shown."""
        chat = self.current
        if self.replies.busy or chat is None or not self.model_controller.check_ready():
            return []
        loaded = self.model_controller.loaded
        if loaded is None or not loaded.capabilities.batched_candidates:
            self.status.showMessage(self.tr("Several answers at once need the local model."), 6000)
            return []
        path = chat.active_path()
        question = next((m for m in reversed(path) if m.role == Role.USER), None)
        if question is None:
            self.status.showMessage(self.tr("Ask something first: then three answers can be written at once."), 6000)
            return []
        self.notices.remove("reply-error")
        ids = self.replies.start_candidates(chat, question.id, self.sampling_for_reply(), n)
        self.save_chat(chat)
        self.show_current()
        return ids

    def _hint_if_repeating(self) -> None:
        """Regenerate with a fixed seed (or temperature 0) writes the same answer again: say so."""
        sampling = self.panel.sampling()
        if sampling.temperature <= 0:
            text = self.tr("Temperature 0 always picks the most likely word, so Regenerate writes the same answer "
                           "again. Raise the temperature for a different one.")
            actions = []
        elif sampling.seed is not None:
            text = self.tr("The seed is fixed ({seed}), so Regenerate writes the same answer again. Use a random "
                           "seed for a different one.").format(seed=sampling.seed)
            actions = [(self.tr("Use a random seed"), self._use_random_seed)]
        else:
            return
        self.notices.show_notice("repeating", text, "info", actions)

    def _use_random_seed(self) -> None:
        self.panel.use_random_seed()
        self.notices.remove("repeating")

    def edit_and_resend(self, user_id: str, text: str) -> None:
        chat = self.current
        if (self.replies.busy or self.documents.preparing or chat is None or user_id not in chat.messages
                or not text.strip() or not self.model_controller.check_ready()):
            return
        if not self.documents.takes_over(chat, text, edit_of=user_id):   # else it keeps the message's files
            self.post_message(chat, text, edit_of=user_id)

    def show_sibling(self, message_id: str, step: int) -> None:
        chat = self.current
        if chat is None or message_id not in chat.messages:
            return
        siblings = chat.siblings(message_id)
        index = [m.id for m in siblings].index(message_id) + step
        if 0 <= index < len(siblings):
            top = self.view.widget_top(message_id)
            chat.select(siblings[index].id)
            self.show_current(scroll_to_end=False)   # the user is reading there
            if top is not None:
                self.view.keep_at(siblings[index].id, top)   # the navigator stays under the pointer
            if chat.messages:
                self.save_chat(chat)

    def _start_reply(self, chat: Chat, user_id: str) -> None:
        self.notices.remove("reply-error")
        self.notices.remove("no-model")
        self.notices.remove("dropped")
        self.replies.start(chat, user_id, self.sampling_for_reply(), meta=self.documents.reply_meta(chat, user_id))
        self.save_chat(chat)
        self.show_current()

    def _update_send_button(self) -> None:
        """Send waits for the first model (see ModelController.send_blocked_reason)."""
        self.input_bar.set_send_blocked(self.model_controller.send_blocked_reason())

    def sampling_for_reply(self) -> dict:
        return self.panel.sampling().to_dict()

    def open_tools(self) -> ToolsDialog:
        """Chat ▸ Tools…: built-in tools, MCP servers, consent; saved when OK is pressed."""
        dialog = ToolsDialog(self.tools.settings, self)
        dialog.accepted.connect(lambda: self.tools.apply(dialog.result_settings()))
        dialog.open()
        return dialog

    def open_models(self):
        """The Models page: fit labels for the context length in use (or the default one)."""
        loaded = self.model_controller.loaded
        context = loaded.context_length if loaded is not None and loaded.is_local else 0
        return self.models_page.open(context or self.settings.context_length or 4096)

    def stop_reply(self) -> None:
        self.replies.stop()

    def _on_busy_changed(self, busy: bool) -> None:
        self.input_bar.set_streaming(busy)
        self.stop_action.setEnabled(busy)
        self.view.set_busy(busy)
        if not busy:
            self.refresh_chat_list()
            self._count_context()

    def _on_reply_finished(self, meta: ReplyMeta) -> None:
        self.status.set_speed(meta.time_to_first_token or 0.0, meta.tokens_per_second or 0.0)
        self.status.set_context_used((meta.prompt_tokens or 0) + (meta.tokens or 0))

    def _count_context(self) -> None:
        if self.current is None or not self.current.messages:
            self._count_request = -1   # a count still on its way was for another chat
            self.status.set_context_used(0)
            return
        # While a reply streams the worker is busy and the text changes: count when it is over.
        if self.model_controller.loaded and not self.replies.busy:
            self._count_request = self.engine.count_tokens(self.current.to_messages_for_model(tool_turns=False))
            self._prepare_timer.start()

    def _prepare_current(self) -> None:
        """While the user reads and types, compute the open chat's context (the model's cache),
        so that sending computes only the new message: in a long chat, the first word comes
        in about a second instead of many."""
        loaded, chat = self.model_controller.loaded, self.current
        if (loaded is not None and loaded.capabilities.prepared_prompts and chat is not None and chat.messages
                and not self.replies.busy):
            self.engine.prepare(chat.to_messages_for_model(tool_turns=False), int(self.sampling_for_reply()["max_new_tokens"]))

    def _on_tokens_counted(self, request_id: int, count: int) -> None:
        if request_id == self._count_request:
            self.status.set_context_used(count)

    def _on_system_prompt_edited(self, text: str) -> None:
        if self.current is not None:
            chat = self.current
            chat.system_prompt = text if text.strip() else None
            self.autosave.request(f"chat:{chat.id}", lambda: chat.messages and self.save_chat(chat))

    def _on_default_system_prompt(self, text: str) -> None:
        self.settings.system_prompt = text
        self.status.showMessage(self.tr("New chats will start with this system prompt."), 4000)

    # -- export ----------------------------------------------------------------------------
    def export_dialog(self, kind: ExportFormat) -> None:
        if self.current is None or not self.current.messages:
            self.status.showMessage(self.tr("Nothing to export yet."), 4000)
            return
        spec = EXPORT_FORMATS[kind]
        suffix = spec.suffix
        name = "".join(c if c.isalnum() or c in " -_" else "_" for c in title_of(self.current)).strip()
        # Where the last export went (kept in the settings), else the documents folder.
        start = str(Path(start_folder(self.settings.folders, "export")) / ((name or "chat") + suffix))
        files = self.tr("{format} (*{suffix})").format(format=spec.name.replace("&", ""), suffix=suffix)
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Export chat"), start, files)
        if path:
            self.export_chat(path, kind)
            remember_folder(self.settings.folders, "export", path)
            self.autosave.schedule()

    def export_chat_dialog(self, chat_id: str, kind: ExportFormat | str) -> None:
        """Export from a chat's "⋯" menu: that chat is opened, then exported."""
        self.open_chat(chat_id)
        if self.current is not None and self.current.id == chat_id:
            self.export_dialog(kind)

    def export_chat(self, path: str, kind: ExportFormat | str) -> bool:
        """Written from the database on a worker thread (history_actions); True once started."""
        return self.history_actions.export_chat(path, kind)

    def _migration_ended(self, error: Exception | None) -> None:
        if error is not None:
            self.library.report_store_error(error, "migration-error")
        self.library.report_problems()

    # -- closing ---------------------------------------------------------------------------
    def closeEvent(self, event):   # noqa: N802 (Qt override)
        if self._closed:
            event.accept()
            return
        self._closed = True
        self.replies.stop()           # keeps and saves the partial answer
        self.migration.stop(SAVE_WAIT_S)   # after its batch under way; the rest at the next start
        if self.current is not None and self.current.messages:
            self.save_chat(self.current)
        self.autosave.schedule()      # the window as it is now, with whatever else is pending
        self.autosave.close()
        self.backend.shutdown()       # stops serving the model
        self.models_page.shutdown()   # downloads pause; the next start resumes them
        self.engine_stopped = self.engine.shutdown(SHUTDOWN_WAIT_MS)
        self.tools.close()            # MCP servers the replies started
        self.history_actions.cancel_imports()   # an import still reading its file stops, writing nothing
        self.documents.shutdown()     # the indexer stops between two files; the file reader ends
        self.jobs.wait(SAVE_WAIT_S)   # an export (or an import already writing) finishes
        self.library.flush(SAVE_WAIT_S)   # what the writer thread still holds reaches the disk
        event.accept()
