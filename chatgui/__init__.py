"""chatgui: a desktop chatbot that runs a language model locally and offline."""

__version__ = "0.1.0"
