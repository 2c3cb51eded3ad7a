"""Seeing inside the model: token view, sampling inspector, compare presets, replay and branch."""
