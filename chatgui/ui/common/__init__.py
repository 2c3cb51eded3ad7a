"""Pieces every feature of the window uses: translation, theme, notices, the status bar, safe text."""
