"""The remote backend: chat with any OpenAI-compatible server. No Qt, no torch.

    model = RemoteModel("http://localhost:8000", api_key=None)   # "/v1" is added to a bare host
    model.model = model.list_models()[0]
    gen = model.generate(messages, SamplingSettings(temperature=0), cancel=CancelFlag())   # common.runner
    for event in gen: print(event.text, end="")
    gen.stats   # prompt_tokens, generated_tokens, finish_reason, time_to_first_token, ...

See client.py for how a remote model differs from a local ChatModel, and secrets.py for where
API keys are kept.
"""
from .client import RemoteModel, normalize_base_url
from .errors import (RemoteAuthError, RemoteConnectionError, RemoteError, RemoteNotFoundError,
                     RemotePromptTooLongError, RemoteProtocolError, RemoteRateLimitError, RemoteRequestError,
                     RemoteServerError, RemoteTimeoutError)
from .generation import RemoteGeneration
from .secrets import ApiKeys, public_backend_settings, system_keyring

__all__ = ["RemoteModel", "RemoteGeneration", "normalize_base_url", "RemoteError", "RemoteAuthError",
           "RemoteConnectionError", "RemoteNotFoundError", "RemotePromptTooLongError", "RemoteProtocolError",
           "RemoteRateLimitError", "RemoteRequestError", "RemoteServerError", "RemoteTimeoutError",
           "public_backend_settings", "ApiKeys", "system_keyring"]
