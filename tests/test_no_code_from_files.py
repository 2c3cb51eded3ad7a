"""Nothing in the app executes code from a model or chat file: no pickles, no eval."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "chatgui"


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            base = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            yield node, base, name


def test_no_pickle_eval_or_unsafe_torch_load():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(m and m.split(".")[0] in ("pickle", "cPickle", "dill", "marshal", "shelve") for m in mods):
                    problems.append(f"{path}:{node.lineno} imports a pickle-like module")
        for node, base, name in _calls(tree):
            where = f"{path}:{node.lineno}"
            if name in ("eval", "exec") and base in ("", "builtins"):
                problems.append(f"{where} calls {name}()")
            if base == "torch" and name == "load":
                safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                           for k in node.keywords)
                if not safe:
                    problems.append(f"{where} torch.load without weights_only=True")
            if name == "load" and base in ("np", "numpy"):
                if any(k.arg == "allow_pickle" and getattr(k.value, "value", False) for k in node.keywords):
                    problems.append(f"{where} numpy.load(allow_pickle=True)")
    assert not problems, "\n".join(problems)


def test_the_check_catches_offenders(tmp_path, monkeypatch):
    """The scanner above must really find an unsafe call (so it cannot pass vacuously)."""
    import test_no_code_from_files as me

    bad = tmp_path / "chatgui"
    bad.mkdir()
    (bad / "x.py").write_text("import torch, pickle\ntorch.load('m.pt')\neval('1')\n")
    monkeypatch.setattr(me, "PACKAGE", bad)
    try:
        me.test_no_pickle_eval_or_unsafe_torch_load()
    except AssertionError as e:
        assert "pickle" in str(e) and "torch.load" in str(e) and "eval" in str(e)
    else:
        raise AssertionError("the scanner missed obvious offenders")
