"""mypy over the layers without Qt and torch (chatgui/common, models, session, store: [tool.mypy] in
pyproject.toml), and proof that it catches what it is there for: a misspelt field of a typed
record."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                                reason="mypy is not installed (pip install -e '.[test]' brings it)")


def mypy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--cache-dir",
                           str(ROOT / ".mypy_cache"), *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_typed_layers_pass_mypy():
    result = mypy()       # the files and options of [tool.mypy]
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_misspelt_record_field_fails_mypy(tmp_path):
    wrong = tmp_path / "uses_records.py"
    wrong.write_text(
        "from chatgui.common.records import FinishReason, ModelInfo, ReplyMeta\n"
        "def describe(meta: ReplyMeta, info: ModelInfo) -> str:\n"
        "    return f'{meta.finish_reasn} {info.contxt_length}'\n"
        "def record() -> ReplyMeta:\n"
        "    return ReplyMeta(tokns=3, finish_reason=FinishReason.STOPPED)\n")
    result = mypy(str(wrong))
    for name in ("finish_reasn", "contxt_length", "tokns", "STOPPED"):
        assert name in result.stdout, result.stdout
    assert result.returncode == 1
