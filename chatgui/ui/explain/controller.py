"""See inside the model: token view, branch from a token, sampling inspector, replay, compare.

ExplainController adds these to the main window (menus, the inspector dock, the handlers of the
message widgets' Replay button and token popup); the window creates it with what it uses and
tells it when another chat is shown.

- Token view (View > Token view): replies drawn token by token, tinted by probability
  (token_view.py); a token's popup lists its alternatives.
- Branch from a token: "Continue with this" in that popup writes the reply again from that
  point, starting with the chosen alternative (the worker's reply_prefix_ids), as another
  candidate of the message (`< 2/2 >`).
- Sampling inspector (View > Sampling inspector): inspector.py.
- Replay: a reply records the model file's sha256, its settings and its seed; Replay writes it
  again with exactly those (as another candidate). On the same model file and device the text
  is identical; with another model file loaded it says so instead of replaying.
- Compare (Chat > Compare presets…): compare.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from chatgui.common.records import ModelInfo, ReplyMeta
from chatgui.session import Chat
from chatgui.session.branch import ReplyPlan, plan_branch
from chatgui.session.compare import ComparedReply, compare_prompt, keep_compared
from chatgui.session.replay import Refusal, ReplayRefusal, plan_replay, replay_finished

from chatgui.ui.explain.compare import CompareDialog
from chatgui.ui.explain.inspector import SamplingInspector

INSPECTOR_WIDTH = 350


class ExplainController(QObject):
    """Given explicitly what it uses: `host`, the main window as a QMainWindow (its menu bar and
    dock area, nothing of its own); the engine client, the reply and model controllers; the
    settings panel (a dock, and the sampling settings), the conversation view, the input bar,
    the notice area, the status bar and the app settings; and three callables for the chat on
    screen: current_chat() -> Chat | None, save_chat(chat), show_current()."""

    def __init__(self, host, *, engine, replies, model_controller, panel, view, input_bar, notices, status, settings,
                 current_chat: Callable[[], Chat | None], save_chat: Callable[[Chat], object],
                 show_current: Callable[[], None]):
        super().__init__(host)
        self.host, self.engine, self.replies, self.model_controller = host, engine, replies, model_controller
        self.panel, self.view, self.input_bar = panel, view, input_bar
        self.notices, self.status, self.settings = notices, status, settings
        self.current_chat, self.save_chat, self.show_current = current_chat, save_chat, show_current
        self.hashes: dict[str, str] = {}                  # model path -> sha256 (as the worker reports)
        self._replays: list[tuple[Chat, str, str]] = []   # (chat, replay id, original id) being written
        self.compare_dialog: CompareDialog | None = None
        self.inspector = SamplingInspector(engine, self.sampling, self)
        self.dock = self.inspector.dock
        host.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        # A tab beside the settings: opening it never takes room from the conversation.
        host.tabifyDockWidget(panel, self.dock)
        self.dock.hide()
        self._panel_width: int | None = None   # the settings panel's width while the inspector was closed
        panel.installEventFilter(self)
        self.dock.visibilityChanged.connect(self._on_dock_visibility)
        self._build_menus()
        view.set_token_view(settings.show_token_view)
        view.replay_requested.connect(self.replay)
        view.branch_requested.connect(self.branch)
        view.inspect_requested.connect(self.inspect_token)
        engine.worker.model_hashed.connect(self._on_model_hashed)
        replies.busy_changed.connect(self._on_busy_changed)
        replies.finished.connect(lambda _meta: self._check_replays())
        panel.sampling_changed.connect(self.inspector.schedule)
        model_controller.model_ready.connect(lambda _info: self.inspector.schedule())   # another model: other logits
        panel.system_prompt_edited.connect(lambda _text: self.inspector.schedule())

    def sampling(self) -> dict:
        """The settings a reply started now would use."""
        return self.panel.sampling().to_dict()

    def _menu(self, name: str, title: str):
        """The window's menu of that object name ("viewMenu": its title may be translated)."""
        menu = self.host.menuBar().findChild(QMenu, name)
        return menu if menu is not None else self.host.menuBar().addMenu(title)

    def _build_menus(self) -> None:
        w = self.host
        view_menu = self._menu("viewMenu", self.tr("&View"))
        self.token_view_action = QAction(self.tr("&Token view"), w, checkable=True)
        self.token_view_action.setShortcut(QKeySequence("Ctrl+Shift+T"))
        self.token_view_action.setToolTip(self.tr("Colour each token of a reply by the probability it was drawn with"))
        self.token_view_action.setChecked(self.settings.show_token_view)
        self.token_view_action.toggled.connect(self.set_token_view)
        view_menu.addAction(self.token_view_action)
        w.addAction(self.token_view_action)
        toggle = self.dock.toggleViewAction()
        toggle.setText(self.tr("Sampling &inspector"))
        toggle.setShortcut(QKeySequence("Ctrl+Shift+I"))
        view_menu.addAction(toggle)
        w.addAction(toggle)
        chat_menu = self._menu("chatMenu", self.tr("&Chat"))
        chat_menu.addSeparator()
        self.compare_action = QAction(self.tr("&Compare presets…"), w)
        self.compare_action.setToolTip(self.tr("Write the next reply twice, with two presets, side by side"))
        self.compare_action.triggered.connect(lambda: self.open_compare())
        chat_menu.addAction(self.compare_action)
        w.addAction(self.compare_action)

    # -- the window's news -----------------------------------------------------------------
    def chat_shown(self) -> None:
        self.inspector.set_chat(self.current_chat())

    def _on_busy_changed(self, busy: bool) -> None:
        self.compare_action.setEnabled(not busy)
        self.inspector.set_busy(busy)

    def _on_model_hashed(self, path: str, sha256: str) -> None:
        self.hashes[path] = sha256

    def eventFilter(self, watched, event):   # noqa: N802 (Qt override)
        if (watched is self.panel and event.type() == QEvent.Type.Resize and self.dock.isHidden()
                and self.host.isVisible()):
            self._panel_width = self.panel.width()
        return False

    def _on_dock_visibility(self, _visible: bool) -> None:
        """The inspector takes its room from the conversation and gives it back when closed: the
        settings panel keeps its width (else Qt would share the dock area's width between them)."""
        QTimer.singleShot(0, self._fit_docks)

    def _fit_docks(self) -> None:
        w, panel = self.host, self.panel
        if self.dock.isVisible() and self.dock in w.tabifiedDockWidgets(panel):
            self.dock.raise_()   # the tab just opened is the one shown
            return
        if panel.isHidden() or panel.isFloating() or self.dock.isFloating():
            return
        width = self._panel_width or max(panel.sizeHint().width(), panel.minimumSizeHint().width())
        if self.dock.isHidden():
            w.resizeDocks([panel], [width], Qt.Orientation.Horizontal)
        elif w.dockWidgetArea(self.dock) == w.dockWidgetArea(panel):
            w.resizeDocks([panel, self.dock], [width, max(INSPECTOR_WIDTH, self.dock.width())],
                          Qt.Orientation.Horizontal)

    # -- token view ------------------------------------------------------------------------
    def set_token_view(self, on: bool) -> None:
        self.settings.show_token_view = bool(on)   # saved with the other settings
        self.view.set_token_view(on)
        if self.token_view_action.isChecked() != bool(on):
            self.token_view_action.setChecked(bool(on))

    def inspect_token(self, message_id: str, index: int) -> None:
        chat = self.current_chat()
        if chat is not None:
            self.dock.show()
            self.dock.raise_()
            self.inspector.inspect_token(chat, message_id, index)

    # -- branch from a token (the rules: session/branch.py) ---------------------------------
    def branch(self, message_id: str, index: int, token_id: int) -> str | None:
        """Write the reply again from token `index` on, starting with `token_id`; returns the new
        candidate's id. The current sampling settings apply (as for Regenerate)."""
        chat = self.current_chat()
        if self.replies.busy or chat is None or message_id not in chat.messages:
            return None
        plan = plan_branch(chat, message_id, index, token_id, self.sampling())
        return self._start(chat, plan) if plan is not None else None

    def _start(self, chat: Chat, plan: ReplyPlan) -> str:
        self.notices.remove("reply-error")
        self.notices.remove("replay")
        reply_id = self.replies.start(chat, plan.parent_id, plan.sampling, meta=plan.meta, prefix_tokens=plan.prefix,
                                      **plan.options)
        self.save_chat(chat)
        self.show_current()
        return reply_id

    # -- replay (the rules: session/replay.py) -----------------------------------------------
    def replay(self, message_id: str) -> str | None:
        """Write this reply again with its recorded settings, seed, reply prefix and model file.
        Returns the new candidate's id, or None with a notice saying why not."""
        chat = self.current_chat()
        if self.replies.busy or chat is None or message_id not in chat.messages:
            return None
        loaded = self.model_controller.loaded
        plan = plan_replay(chat, message_id, loaded, self.hashes.get(loaded.path) if loaded is not None else None)
        if isinstance(plan, Refusal):
            self._refusal_notice(plan, loaded)
            return None
        reply_id = self._start(chat, plan)
        self._replays.append((chat, reply_id, message_id))
        notes = []
        if plan.unchecked_file:
            notes.append(self.tr("The model file's hash was not recorded with this reply, so it could not be "
                                 "checked."))
        if plan.made_on and loaded is not None:
            notes.append(self.tr("It was made on {made} and is replayed on {now}, so the text may differ.").format(
                made=plan.made_on, now=loaded.device))
        if notes:
            self.status.showMessage(self.tr("Replaying. {notes}").format(notes=" ".join(notes)), 8000)
        return reply_id

    def _refusal_notice(self, refusal: Refusal, loaded: ModelInfo | None) -> None:
        why = refusal.why
        if why is ReplayRefusal.OTHER_MODEL_FILE and loaded is not None:
            self._mismatch_notice(refusal.made, loaded, self.hashes.get(loaded.path) or "")
            return
        texts = {
            ReplayRefusal.NOT_RECORDED: self.tr("This reply has no recorded settings and seed, so it cannot be "
                                                "replayed."),
            ReplayRefusal.NO_MODEL: self.tr("No model is loaded: load the model this reply was made with to replay "
                                            "it."),
            ReplayRefusal.NOT_LOCAL: self.tr("Replay needs the local model, on both ends: a remote server does not "
                                             "promise the same answer for the same seed, and its model file cannot "
                                             "be checked."),
            ReplayRefusal.TOKENS_INCOMPLETE: self.tr("This reply's recorded tokens are incomplete, so it cannot be "
                                                     "replayed."),
        }
        self._notice(texts.get(why, ""))

    def _mismatch_notice(self, made: ReplyMeta, loaded: ModelInfo, have: str) -> None:
        wanted = made.model_sha256 or ""
        name = made.model or self.tr("another model")
        path = made.model_path or ""
        sentences = [self.tr("Not replayed: this reply was made with {name} (sha256 {wanted}…), but the loaded model "
                             "file {loaded} is different (sha256 {have}…). Replaying it would not give the same "
                             "answer.").format(name=name, wanted=wanted[:12], loaded=Path(loaded.path).name,
                                               have=have[:12])]
        actions = []
        if path and path == loaded.path:
            sentences.append(self.tr("The file {path} has changed since the reply was made.").format(path=path))
        elif path and Path(path).is_file():
            sentences.append(self.tr("Load {name} to replay it.").format(name=Path(path).name))
            actions.append((self.tr("Load {name}").format(name=Path(path).name), lambda: self.model_controller.load(path)))
        elif path:
            sentences.append(self.tr("That file ({path}) is no longer there.").format(path=path))
        self.notices.show_notice("replay", " ".join(sentences), "warning", actions)

    def _notice(self, text: str) -> None:
        self.notices.show_notice("replay", text, "warning")

    def _check_replays(self) -> None:
        """Say whether each finished replay matches its original."""
        still = []
        for chat, reply_id, original_id in self._replays:
            reply, original = chat.messages.get(reply_id), chat.messages.get(original_id)
            if reply is None or original is None:
                continue
            result = replay_finished(reply, original)
            if result is None:          # still being written
                still.append((chat, reply_id, original_id))
                continue
            if result.failed:
                continue
            self.save_chat(chat)
            if result.identical:
                self.status.showMessage(self.tr("Replay: identical to the original reply."), 8000)
            else:
                self.notices.show_notice(
                    "replay", self.tr("The replay differs from the original reply from character {number} on. The "
                                      "device, the context length or the chat before it may have changed.").format(
                                          number=result.differs_at + 1), "info")
        self._replays = still

    # -- compare (the rules: session/compare.py) --------------------------------------------
    def open_compare(self, presets: tuple[str, str] | None = None) -> CompareDialog | None:
        """Compare two presets on the next reply: to the text in the input box (a new question),
        else to the last question of the chat (as new candidates of its reply)."""
        chat = self.current_chat()
        if self.replies.busy or chat is None:
            return None
        prompt = compare_prompt(chat, self.input_bar.text().strip())
        if prompt is None:
            self.status.showMessage(self.tr("Type a question first: Compare writes its answer with two "
                                            "presets."), 5000)
            return None
        messages, question, parent = prompt
        loaded = self.model_controller.loaded
        dialog = CompareDialog(self.engine, messages, self.sampling(), question,
                               **({"presets": presets} if presets else {}), parent=self.host,
                               batched=loaded is not None and loaded.capabilities.batched_candidates)
        dialog.keep_requested.connect(lambda results: self._keep_compared(chat, parent, question, results))
        dialog.finished.connect(dialog.deleteLater)
        self.compare_dialog = dialog
        dialog.show()
        dialog.start()
        return dialog

    def _keep_compared(self, chat: Chat, parent_id: str | None, question: str, results: list[ComparedReply]) -> None:
        asked_now = parent_id is None or parent_id not in chat.messages
        keep_compared(chat, parent_id, question, results, self.hashes)
        if asked_now and chat is self.current_chat():
            self.input_bar.clear()
        self.save_chat(chat)
        if chat is self.current_chat():
            self.show_current()
