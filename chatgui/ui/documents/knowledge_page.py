"""The Knowledge page (File > Knowledge folders…): the folders chatgui searches for a chat that
uses them, the indexer's progress (pause, resume, index again), and a status per file, with
the files that could not be read and why."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QProgressBar, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout)
from PySide6.QtCore import Qt

from chatgui.ui.common.file_dialogs import documents_folder


class KnowledgePage(QDialog):
    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("knowledgePage")
        self.setWindowTitle(self.tr("Knowledge folders"))
        layout = QVBoxLayout(self)
        intro = QLabel(self.tr("A chat with “Use knowledge folders” on searches these folders for each message and "
                               "cites the passages it used. Only changed files are read again."))
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.folder_list = QListWidget()
        self.folder_list.setObjectName("knowledgeFolders")
        self.folder_list.currentItemChanged.connect(lambda *_: self._show_files())
        layout.addWidget(self.folder_list, 1)
        buttons = QHBoxLayout()
        self.add_button = QPushButton(self.tr("Add folder…"))
        self.add_button.clicked.connect(self.choose_folder)
        self.remove_button = QPushButton(self.tr("Remove"))
        self.remove_button.clicked.connect(self.remove_selected)
        self.reindex_button = QPushButton(self.tr("Index again"))
        self.reindex_button.clicked.connect(self.controller.start_indexing)
        self.pause_button = QPushButton(self.tr("Pause"))
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._pause)
        for button in (self.add_button, self.remove_button, self.reindex_button, self.pause_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        meaning = QHBoxLayout()
        meaning.addWidget(QLabel(self.tr("Search by meaning with:")))
        self.model_choice = QComboBox()
        self.model_choice.setObjectName("knowledgeModel")
        self.model_choice.setToolTip(self.tr("An embedding model finds passages that say what you ask in other "
                                             "words. Embedding models are on the Models page (File > Models…)."))
        self.model_choice.activated.connect(self._model_chosen)
        meaning.addWidget(self.model_choice, 1)
        layout.addLayout(meaning)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        layout.addWidget(self.progress)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("knowledgeProgress")
        self.progress_label.setWordWrap(True)
        layout.addWidget(self.progress_label)
        self.files = QTreeWidget()
        self.files.setObjectName("knowledgeFiles")
        self.files.setHeaderLabels([self.tr("File"), self.tr("Status"), self.tr("Reason")])
        self.files.setRootIsDecorated(False)
        layout.addWidget(self.files, 2)
        controller.index_progress.connect(self._on_progress)
        controller.index_finished.connect(self._on_finished)
        self.resize(640, 520)

    def refresh(self) -> None:
        if self.controller.index_error:
            self.progress_label.setText(self.tr("The knowledge index cannot be used: {error}").format(
                error=self.controller.index_error))
        current = self.selected_folder_id()
        self.folder_list.clear()
        for folder in self.controller.folders():
            item = QListWidgetItem(folder.path)
            item.setData(Qt.ItemDataRole.UserRole, folder.id)
            self.folder_list.addItem(item)
            if folder.id == current or current is None:
                self.folder_list.setCurrentItem(item)
                current = folder.id
        indexing = self.controller.indexing()
        self.pause_button.setEnabled(indexing)
        self.reindex_button.setEnabled(not indexing and self.folder_list.count() > 0)
        self.remove_button.setEnabled(self.folder_list.count() > 0)
        self._show_models()
        self._show_files()

    def _show_models(self) -> None:
        self.model_choice.clear()
        self.model_choice.addItem(self.tr("Words only (no embedding model)"), None)
        for name, path in self.controller.embedding_models():
            self.model_choice.addItem(name, path)
            self.model_choice.setItemData(self.model_choice.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
        chosen = self.controller.window.settings.knowledge_model
        self.model_choice.setCurrentIndex(max(0, self.model_choice.findData(chosen)) if chosen else 0)

    def _model_chosen(self, row: int) -> None:
        self.controller.set_embedding_model(self.model_choice.itemData(row))
        self.refresh()

    def selected_folder_id(self) -> int | None:
        item = self.folder_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.tr("Add a knowledge folder"), documents_folder())
        if path:
            self.add_folder(path)

    def add_folder(self, path: str) -> None:
        self.controller.add_folder(path)
        self.refresh()

    def remove_selected(self) -> None:
        folder_id = self.selected_folder_id()
        if folder_id is not None:
            self.controller.remove_folder(folder_id)
            self.refresh()

    def _pause(self, paused: bool) -> None:
        self.controller.pause_indexing(paused)
        self.pause_button.setText(self.tr("Resume") if paused else self.tr("Pause"))
        if paused:
            self.progress_label.setText(self.tr("Paused: indexing goes on after the file it is on when resumed."))

    def _show_files(self) -> None:
        self.files.clear()
        folder_id = self.selected_folder_id()
        if folder_id is None:
            return
        for status in self.controller.file_statuses(folder_id):
            shown = self.tr("indexed") if status.status == "indexed" else self.tr("failed")
            item = QTreeWidgetItem([Path(status.path).name, shown, status.reason or ""])
            item.setToolTip(0, status.path)
            item.setToolTip(2, status.reason or "")
            self.files.addTopLevelItem(item)
        self.files.resizeColumnToContents(0)

    def failures(self) -> list[tuple[str, str]]:
        """(file, reason) of each file shown as failed."""
        items = (self.files.topLevelItem(i) for i in range(self.files.topLevelItemCount()))
        return [(item.text(0), item.text(2)) for item in items if item.text(1) == self.tr("failed")]

    def _on_progress(self, progress) -> None:
        self.progress.setMaximum(max(1, progress.total))
        self.progress.setValue(progress.done)
        if progress.outcome == "embedding":
            self.progress_label.setText(self.tr("Embedding {folder}: {done} of {total} passages").format(
                folder=progress.folder, done=progress.done, total=progress.total))
        else:
            self.progress_label.setText(self.tr("Indexing {folder}: {done} of {total} files ({name})").format(
                folder=progress.folder, done=progress.done, total=progress.total, name=Path(progress.path).name))
        self.pause_button.setEnabled(True)
        self.reindex_button.setEnabled(False)

    def _on_finished(self, summary) -> None:
        self.pause_button.setChecked(False)
        job = self.controller.job
        if job is not None and job.error:   # the index itself could not be used
            text = self.tr("Indexing could not run: {error}").format(error=job.error)
        elif summary.cancelled:
            text = self.tr("Indexing stopped.")
        else:
            text = self.tr("Up to date: {indexed} read, {unchanged} unchanged, {failed} could not be read, "
                           "{removed} removed.").format(indexed=summary.indexed, unchanged=summary.unchanged,
                                                       failed=summary.failed, removed=summary.removed)
            if summary.embedded:
                text += " " + self.tr("{count} passages embedded.").format(count=summary.embedded)
            if summary.embedding_error:
                text += " " + self.tr("The embedding model could not be used ({error}): the folders are searched "
                                      "by their words.").format(error=summary.embedding_error)
        self.progress.setValue(self.progress.maximum())
        self.progress_label.setText(text)
        self.refresh()
