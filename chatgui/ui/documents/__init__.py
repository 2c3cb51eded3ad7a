"""Documents in the window (issue 32): files attached to a message, knowledge folders, and the
numbered sources under a reply. The work itself is chatgui.documents (no Qt); this package
only shows it and runs it off the GUI thread."""
