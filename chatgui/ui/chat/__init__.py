"""The conversation: chat list, message widgets, Markdown, the composer, the streaming reply."""
