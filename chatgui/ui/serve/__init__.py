"""The "Serve" switch: the local model as an OpenAI-compatible API for other programs."""
