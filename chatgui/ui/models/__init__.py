"""The Models page: the catalog, downloads, and the models on this machine.

It takes what it needs explicitly (a catalog, a DownloadController, a callback that loads a model
path) and touches no other UI file; the main window decides where the page lives.
"""
from .download_controller import DownloadController
from .page import ModelsPage

__all__ = ["DownloadController", "ModelsPage"]
