"""The Tools dialog (Chat ▸ Tools…): built-in tools on or off, the MCP servers (added by hand or
imported from an `mcp.json` file as LM Studio and Claude Desktop write it), each server's tools
and status, the per-server allow list, and the most rounds of calls in one reply."""
from __future__ import annotations

import copy
import shlex
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QLineEdit, QListWidget, QListWidgetItem, QMessageBox, QPushButton, QSpinBox,
                               QVBoxLayout)

from chatgui.tools.consent import ConsentPolicy
from chatgui.tools.mcp_client import McpServerConfig, parse_mcp_config

from .tool_settings import MAX_ROUNDS_LIMIT, ToolSettings

MAX_MCP_JSON_BYTES = 1024 * 1024


def list_server_tools(config: McpServerConfig, timeout: float = 20.0) -> tuple[list[str], str | None]:
    """The server's tool names, or the one sentence that says why they could not be listed."""
    from chatgui.tools.mcp_client import McpError, McpHub

    hub = McpHub([config], start_timeout=timeout, call_timeout=timeout)
    try:
        return [t.name for t in hub.tools(config.name)], None
    except McpError as e:
        return [], str(e)
    finally:
        hub.close()


class _Checker(QObject):
    """Lists servers' tools on a thread of its own (starting a server may take seconds)."""
    checked = Signal(str, object, object)   # server name, [tool names], error sentence or None

    def check(self, config: McpServerConfig) -> None:
        threading.Thread(target=lambda: self.checked.emit(config.name, *list_server_tools(config)),
                         name="chatgui-mcp-check", daemon=True).start()


class AddServerDialog(QDialog):
    def __init__(self, taken: set[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle(self.tr("Add an MCP server"))
        self.taken = taken
        form = QFormLayout(self)
        self.name = QLineEdit()
        self.command = QLineEdit()
        self.command.setPlaceholderText(self.tr("e.g. npx -y @modelcontextprotocol/server-filesystem ~/Documents"))
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://127.0.0.1:8000/mcp")
        form.addRow(self.tr("Name"), self.name)
        form.addRow(self.tr("Command"), self.command)
        form.addRow(self.tr("or URL"), self.url)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setObjectName("addServerError")
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.config: McpServerConfig | None = None

    def _check(self) -> None:
        try:
            self.config = self.make_config()
        except ValueError as e:
            self.error.setText(str(e))
            return
        self.accept()

    def make_config(self) -> McpServerConfig:
        name, command, url = self.name.text().strip(), self.command.text().strip(), self.url.text().strip()
        if not name:
            raise ValueError(self.tr("Give the server a name."))
        if name in self.taken:
            raise ValueError(self.tr("A server named “{name}” is already configured.").format(name=name))
        if url:
            return McpServerConfig.from_dict(name, {"url": url})
        try:
            parts = shlex.split(command)
        except ValueError as e:
            raise ValueError(self.tr("The command cannot be read: {error}.").format(error=e)) from None
        if not parts:
            raise ValueError(self.tr("Give a command to start the server, or its URL."))
        return McpServerConfig.from_dict(name, {"command": parts[0], "args": parts[1:]})


class ToolsDialog(QDialog):
    def __init__(self, settings: ToolSettings, parent=None):
        super().__init__(parent)
        self.setObjectName("toolsDialog")
        self.setWindowTitle(self.tr("Tools"))
        self.settings = copy.deepcopy(settings)
        self.policy = ConsentPolicy.from_dict(self.settings.consent)
        self.status: dict[str, str] = {}
        self._checker = _Checker(self)
        self._checker.checked.connect(self._on_checked, Qt.ConnectionType.QueuedConnection)
        layout = QVBoxLayout(self)
        intro = QLabel(self.tr("Tools let the model calculate, look things up and use MCP servers while it "
                               "answers (local models only). Each tool asks before its first call."))
        intro.setWordWrap(True)
        layout.addWidget(intro)

        builtin = QGroupBox(self.tr("Built-in tools"))
        col = QVBoxLayout(builtin)
        self.calculator = QCheckBox(self.tr("Calculator"))
        self.clock = QCheckBox(self.tr("Date and time"))
        self.history = QCheckBox(self.tr("Search chat history"))
        for box, on, name in ((self.calculator, self.settings.calculator, "toolCalculator"),
                              (self.clock, self.settings.clock, "toolClock"),
                              (self.history, self.settings.history, "toolHistory")):
            box.setChecked(on)
            box.setObjectName(name)
            col.addWidget(box)
        layout.addWidget(builtin)

        servers = QGroupBox(self.tr("MCP servers"))
        col = QVBoxLayout(servers)
        self.server_list = QListWidget()
        self.server_list.setObjectName("mcpServerList")
        self.server_list.currentRowChanged.connect(self._show_selected)
        col.addWidget(self.server_list)
        self.server_info = QLabel()
        self.server_info.setObjectName("mcpServerInfo")
        self.server_info.setWordWrap(True)
        col.addWidget(self.server_info)
        self.allow_server = QCheckBox(self.tr("Allow every tool of this server without asking"))
        self.allow_server.setObjectName("mcpAllowServer")
        self.allow_server.toggled.connect(self._allow_selected)
        col.addWidget(self.allow_server)
        row = QHBoxLayout()
        for text, slot, name in ((self.tr("Add…"), self.add_server, "mcpAdd"),
                                 (self.tr("Import mcp.json…"), self.import_dialog, "mcpImport"),
                                 (self.tr("Remove"), self.remove_server, "mcpRemove"),
                                 (self.tr("Check"), self.check_servers, "mcpCheck")):
            button = QPushButton(text)
            button.setObjectName(name)
            button.clicked.connect(slot)
            row.addWidget(button)
        col.addLayout(row)
        layout.addWidget(servers)

        rounds = QFormLayout()
        self.max_rounds = QSpinBox()
        self.max_rounds.setObjectName("toolMaxRounds")
        self.max_rounds.setRange(1, MAX_ROUNDS_LIMIT)
        self.max_rounds.setValue(self.settings.max_rounds)
        rounds.addRow(self.tr("Most rounds of tool calls in one reply"), self.max_rounds)
        layout.addLayout(rounds)
        self.forget = QPushButton(self.tr("Forget “Always” answers"))
        self.forget.setObjectName("toolForgetAlways")
        self.forget.clicked.connect(self._forget_always)
        layout.addWidget(self.forget, 0, Qt.AlignmentFlag.AlignLeft)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._fill_servers()

    # -- the result -----------------------------------------------------------------------
    def result_settings(self) -> ToolSettings:
        s = self.settings
        s.calculator, s.clock, s.history = self.calculator.isChecked(), self.clock.isChecked(), self.history.isChecked()
        s.max_rounds = self.max_rounds.value()
        s.consent = self.policy.to_dict()
        return s

    # -- servers --------------------------------------------------------------------------
    def _fill_servers(self) -> None:
        row = self.server_list.currentRow()
        self.server_list.clear()
        for config in self.settings.servers:
            where = config.url if config.url else " ".join([config.command or "", *config.args])
            item = QListWidgetItem(f"{config.name} — {where}")
            item.setData(Qt.ItemDataRole.UserRole, config.name)
            self.server_list.addItem(item)
        self.server_list.setCurrentRow(min(max(row, 0), self.server_list.count() - 1))
        self._show_selected()

    def selected(self) -> McpServerConfig | None:
        row = self.server_list.currentRow()
        return self.settings.servers[row] if 0 <= row < len(self.settings.servers) else None

    def _show_selected(self, *_args) -> None:
        config = self.selected()
        self.allow_server.setEnabled(config is not None)
        self.allow_server.blockSignals(True)
        self.allow_server.setChecked(config is not None and config.name in self.policy.servers)
        self.allow_server.blockSignals(False)
        if config is None:
            self.server_info.setText(self.tr("No MCP server is configured."))
            return
        self.server_info.setText(self.status.get(config.name, self.tr("Not checked yet: press Check to start it "
                                                                      "and list its tools.")))

    def _allow_selected(self, on: bool) -> None:
        config = self.selected()
        if config is not None:
            self.policy.allow_server(config.name, on)

    def add_server(self) -> McpServerConfig | None:
        dialog = AddServerDialog({c.name for c in self.settings.servers}, self)
        if dialog.exec() != QDialog.DialogCode.Accepted or dialog.config is None:
            return None
        return self.add_configs([dialog.config])[0]

    def add_configs(self, configs: list[McpServerConfig]) -> list[McpServerConfig]:
        """Add servers; one whose name is taken replaces the old entry (an import brings it again)."""
        names = {c.name for c in configs}
        self.settings.servers = [c for c in self.settings.servers if c.name not in names] + list(configs)
        for c in configs:
            self.status.pop(c.name, None)
        self._fill_servers()
        self.server_list.setCurrentRow(len(self.settings.servers) - 1)
        return list(configs)

    def import_file(self, path: str | Path) -> list[McpServerConfig]:
        """Servers from an mcp.json file; ValueError says plainly what is wrong, and nothing is added."""
        path = Path(path)
        try:
            if path.stat().st_size > MAX_MCP_JSON_BYTES:
                raise ValueError(self.tr("{file} is too large to be an MCP configuration.").format(file=path.name))
            text = path.read_text(encoding="utf-8-sig")
        except OSError as e:
            raise ValueError(self.tr("{file} cannot be read ({error}).").format(file=path.name,
                                                                              error=e.strerror or e)) from None
        except UnicodeDecodeError:
            raise ValueError(self.tr("{file} is not a text file.").format(file=path.name)) from None
        configs = parse_mcp_config(text)
        return self.add_configs(configs)

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Import MCP servers"), "",
                                              self.tr("MCP configuration (*.json)"))
        if not path:
            return
        try:
            added = self.import_file(path)
        except ValueError as e:
            QMessageBox.warning(self, self.tr("Import MCP servers"),
                                self.tr("Nothing was imported: {error}").format(error=e))
            return
        self.server_info.setText(self.tr("{count} servers imported.").format(count=len(added)))

    def remove_server(self) -> None:
        config = self.selected()
        if config is None:
            return
        self.settings.servers = [c for c in self.settings.servers if c.name != config.name]
        self.policy.allow_server(config.name, False)
        self.policy.always = {k for k in self.policy.always if not k.startswith(f"mcp:{config.name}/")}
        self._fill_servers()

    def check_servers(self) -> None:
        for config in self.settings.servers:
            self.status[config.name] = self.tr("Starting…")
            self._checker.check(config)
        self._show_selected()

    def _on_checked(self, name: str, tools: list, error) -> None:
        if error:
            self.status[name] = self.tr("Failed: {error}").format(error=error)
        elif tools:
            self.status[name] = self.tr("Running. Tools: {tools}").format(tools=", ".join(tools))
        else:
            self.status[name] = self.tr("Running, but it offers no tools.")
        self._show_selected()

    def _forget_always(self) -> None:
        self.policy.always.clear()
        self.forget.setEnabled(False)
