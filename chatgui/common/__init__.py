"""Value types and folders shared by every layer (engine, store, server, remote, ui).

Nothing here imports torch, Qt or any other chatgui package, so any layer may import it.
"""
