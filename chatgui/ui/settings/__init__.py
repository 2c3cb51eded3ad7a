"""The settings panel (model, device, sampling), the window's saved state, the language menu."""
