"""Model downloads against a loopback HTTP server: Range resume after a dropped connection, pause
and resume after a restart, hash mismatch, disk full, two pulls at once, kill -9, offline."""
from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from model_server import FileServer
from tiny_gguf import write_tiny_model

from chatgui.models import sources
from chatgui.models.catalog import Source
from chatgui.models.download import DownloadSpec, partial_for, pull
from chatgui.models.errors import Cancelled, DiskFullError, HashMismatchError, ModelFetchError, OfflineError, Paused
from chatgui.models.transfer import Control


@pytest.fixture(scope="module")
def gguf_bytes(tmp_path_factory) -> bytes:
    return write_tiny_model(tmp_path_factory.mktemp("gguf") / "tiny.gguf").read_bytes()


@pytest.fixture
def server_for(gguf_bytes):
    made = []

    def make(**kw):
        s = FileServer(gguf_bytes, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def spec_for(url: str, data: bytes, sha256: str | None = None) -> DownloadSpec:
    return DownloadSpec("tiny", "Tiny test model", "tiny.gguf", len(data),
                        sha256 or hashlib.sha256(data).hexdigest(), (Source("url", url=url),))


def test_url_download_resumes_after_a_dropped_connection(tmp_path, server_for, gguf_bytes):
    server = server_for(drop_once_at=len(gguf_bytes) // 2)
    seen = []
    path = pull(spec_for(server.url, gguf_bytes), progress=seen.append, folder=tmp_path)
    assert path == tmp_path / "tiny.gguf" and path.read_bytes() == gguf_bytes
    ranges = [r["range"] for r in server.requests]
    assert ranges[0] is None and ranges[1] is not None
    resumed_at = int(ranges[1].split("=")[1].rstrip("-"))
    assert 0 < resumed_at <= len(gguf_bytes) // 2 + 4096
    assert server.bytes_sent() < len(gguf_bytes) * 1.1, "the first half was fetched again"
    assert {"download", "verify", "install"} <= {p.stage for p in seen}
    assert seen[-1].done == len(gguf_bytes)
    assert not list((tmp_path / ".partial").glob("tiny.gguf.*[!k]")), "partial or state left behind"


def _pause_midway(control: Control, at: int):
    def progress(p):
        if p.stage == "download" and p.done >= at:
            control.pause()
    return progress


def test_pause_then_resume_in_a_new_process_state(tmp_path, server_for, gguf_bytes):
    server = server_for(delay_per_block=0.001)
    spec = spec_for(server.url, gguf_bytes)
    control = Control()
    with pytest.raises(Paused):
        pull(spec, progress=_pause_midway(control, len(gguf_bytes) // 3), control=control, folder=tmp_path)
    partial = partial_for(spec, tmp_path)
    kept = partial.size()
    assert kept >= len(gguf_bytes) // 3 and not (tmp_path / "tiny.gguf").exists()
    # A later pull (as after an app restart: only the files on disk carry over) fetches the rest.
    path = pull(spec, folder=tmp_path)
    assert path.read_bytes() == gguf_bytes
    assert server.requests[-1]["range"] == f"bytes={kept}-"
    assert server.requests[-1]["sent"] == len(gguf_bytes) - kept


def test_cancel_deletes_the_partial_download(tmp_path, server_for, gguf_bytes):
    server = server_for(delay_per_block=0.001)
    spec = spec_for(server.url, gguf_bytes)
    control = Control()
    progress = _pause_midway(control, len(gguf_bytes) // 3)
    with pytest.raises(Cancelled):
        pull(spec, progress=lambda p: (progress(p), control.cancel() if control.stopped else None), control=control,
             folder=tmp_path)
    partial = partial_for(spec, tmp_path)
    assert not partial.part.exists() and not partial.state_path.exists()


def test_hash_mismatch_deletes_the_file_and_names_the_source(tmp_path, server_for, gguf_bytes):
    server = server_for()
    spec = spec_for(server.url, gguf_bytes, sha256="0" * 64)
    with pytest.raises(HashMismatchError) as e:
        pull(spec, folder=tmp_path)
    assert server.url in str(e.value) and "deleted" in str(e.value)
    assert not (tmp_path / "tiny.gguf").exists()
    assert not partial_for(spec, tmp_path).part.exists()


def test_disk_full_keeps_the_partial_and_installs_nothing(tmp_path, server_for, gguf_bytes, monkeypatch):
    server = server_for()
    spec = spec_for(server.url, gguf_bytes)
    room = len(gguf_bytes) // 2
    real_open = open

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def write(self, b):
            left = room - self.f.tell()
            if left <= 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(b[:left]) if len(b) > left else self.f.write(b)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(sources, "open", lambda *a, **k: FullDisk(real_open(*a, **k)), raising=False)
    with pytest.raises(DiskFullError) as e:
        pull(spec, folder=tmp_path)
    assert "disk is full" in str(e.value) and "kept" in str(e.value)
    assert partial_for(spec, tmp_path).size() == room
    assert not (tmp_path / "tiny.gguf").exists()
    monkeypatch.undo()
    assert pull(spec, folder=tmp_path).read_bytes() == gguf_bytes
    assert server.requests[-1]["range"] == f"bytes={room}-"


def test_two_pulls_of_one_model_download_it_once(tmp_path, server_for, gguf_bytes):
    server = server_for(delay_per_block=0.002)
    spec = spec_for(server.url, gguf_bytes)
    results, stages = [], []

    def one():
        results.append(pull(spec, progress=lambda p: stages.append(p.stage), folder=tmp_path))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [tmp_path / "tiny.gguf"] * 2
    assert len(server.requests) == 1 and server.bytes_sent() == len(gguf_bytes)
    assert "waiting" in stages
    assert (tmp_path / "tiny.gguf").read_bytes() == gguf_bytes


KILL_SCRIPT = """
import sys, json
from pathlib import Path
from chatgui.models.download import DownloadSpec, pull
from chatgui.models.catalog import Source
spec = DownloadSpec("tiny", "Tiny", "tiny.gguf", int(sys.argv[2]), sys.argv[3], (Source("url", url=sys.argv[1]),))
pull(spec, folder=Path(sys.argv[4]))
"""


@pytest.mark.parametrize("kill_after", [0.05, 0.8])
def test_kill_9_mid_download_then_pull_resumes_and_verifies(tmp_path, server_for, gguf_bytes, kill_after):
    server = server_for(delay_per_block=0.005, block=1024)       # ~2 s for the whole file
    spec = spec_for(server.url, gguf_bytes)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, server.url, str(len(gguf_bytes)), spec.sha256,
                             str(tmp_path)], cwd=root, env=dict(os.environ, PYTHONPATH=str(root)))
    partial = partial_for(spec, tmp_path)
    deadline = time.monotonic() + 30
    while partial.size() == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(kill_after)
    assert proc.poll() is None, "the pull ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    dest = tmp_path / "tiny.gguf"
    assert not dest.exists(), "a file where the app loads models before it was verified"
    kept = partial.size()
    assert 0 < kept < len(gguf_bytes)
    assert pull(spec, folder=tmp_path).read_bytes() == gguf_bytes
    assert server.requests[-1]["range"] == f"bytes={kept}-"


def test_offline_says_how_to_add_the_file_by_hand(tmp_path, gguf_bytes):
    closed = FileServer(gguf_bytes)
    url = closed.url
    closed.close()
    with pytest.raises(OfflineError) as e:
        pull(spec_for(url, gguf_bytes), folder=tmp_path)
    msg = str(e.value)
    assert "Add a .gguf file" in msg and str(tmp_path) in msg and "tiny.gguf" in msg


def test_a_server_that_is_not_a_gguf_is_refused(tmp_path, server_for):
    server = FileServer(b"<html>login page</html>")
    try:
        spec = DownloadSpec.from_url(server.url)
        with pytest.raises(HashMismatchError, match="not give a GGUF"):
            pull(spec, folder=tmp_path)
        assert not (tmp_path / "tiny.gguf").exists()
    finally:
        server.close()


def test_download_from_a_url_without_a_known_hash(tmp_path, server_for, gguf_bytes):
    server = server_for(drop_once_at=1000)
    path = pull(DownloadSpec.from_url(server.url), folder=tmp_path)
    assert path.name == "tiny.gguf" and path.read_bytes() == gguf_bytes


def test_a_url_download_never_replaces_a_model_of_the_same_name(tmp_path, server_for, gguf_bytes):
    server = server_for()
    (tmp_path / "tiny.gguf").write_bytes(b"GGUF mine")
    with pytest.raises(ModelFetchError, match="already in the models folder"):
        pull(DownloadSpec.from_url(server.url), folder=tmp_path)
    assert (tmp_path / "tiny.gguf").read_bytes() == b"GGUF mine" and not server.requests


def test_not_enough_room_is_said_before_downloading(tmp_path, server_for, gguf_bytes, monkeypatch):
    from collections import namedtuple

    from chatgui.models import download
    server = server_for()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(DiskFullError, match="disk is full"):
        pull(spec_for(server.url, gguf_bytes), folder=tmp_path)
    assert not server.requests and not (tmp_path / "tiny.gguf").exists()


# -- servers that lie (issue 29, cases 6 and 9) -------------------------------------------------
@pytest.fixture(scope="module")
def gguf_v2(tmp_path_factory, gguf_bytes) -> bytes:
    """Another version of the model: the same size and layout, other weights (a splice of the
    two passes every size and header check)."""
    data = write_tiny_model(tmp_path_factory.mktemp("gguf2") / "tiny.gguf", seed=1).read_bytes()
    assert len(data) == len(gguf_bytes) and data != gguf_bytes
    return data


def test_a_206_for_another_range_is_not_spliced_in(tmp_path, server_for, gguf_bytes):
    # Before: the bytes of the wrong range were appended and the mix installed as ready.
    half = len(gguf_bytes) // 2
    server = server_for(drop_once_at=half, shift_range_once=1000)
    path = pull(DownloadSpec.from_url(server.url), folder=tmp_path)
    assert path.read_bytes() == gguf_bytes
    assert server.requests[-1]["range"] is None, "the download did not start over"


@pytest.mark.parametrize("validator", ["etag", "last_modified", "none"])
def test_a_file_changed_on_the_server_mid_download_is_not_spliced(tmp_path, server_for, gguf_bytes, gguf_v2,
                                                                  validator):
    # The server ignores If-Range and answers the resume with a 206 of its new version. Before:
    # the state file took the new ETag, the halves were joined and the mix installed as ready
    # (without any validator nothing noticed either).
    old = {"etag": {"etag": '"v1"'}, "last_modified": {"etag": None, "last_modified": "Mon, 07 Dec 2026 10:00:00 GMT"},
           "none": {"etag": None}}[validator]
    new = {"etag": {"etag": '"v2"'}, "last_modified": {"last_modified": "Mon, 07 Dec 2026 11:00:00 GMT"},
           "none": {}}[validator]
    server = server_for(drop_once_at=len(gguf_bytes) // 2, honour_if_range=False, **old)
    server.after_first_response = lambda: server.replace(gguf_v2, **new)
    path = pull(DownloadSpec.from_url(server.url), folder=tmp_path)
    assert path.read_bytes() == gguf_v2
    assert server.requests[-1]["range"] is None


def test_resuming_without_a_validator_costs_only_a_small_overlap(tmp_path, server_for, gguf_bytes):
    server = server_for(drop_once_at=len(gguf_bytes) // 2, etag=None)
    path = pull(DownloadSpec.from_url(server.url), folder=tmp_path)
    assert path.read_bytes() == gguf_bytes
    assert len(server.requests) == 2 and server.requests[1]["range"] is not None
    assert server.bytes_sent() <= len(gguf_bytes) + 64 * 1024


def test_a_gguf_whose_layout_does_not_add_up_is_not_installed(tmp_path, server_for, gguf_bytes):
    # Before: only the magic bytes were checked, so a cut-short file was installed as ready.
    server = FileServer(gguf_bytes[:-1000])
    try:
        with pytest.raises(HashMismatchError, match="not give a whole GGUF model"):
            pull(DownloadSpec.from_url(server.url), folder=tmp_path)
        assert not (tmp_path / "tiny.gguf").exists() and not partial_for(DownloadSpec.from_url(server.url),
                                                                        tmp_path).part.exists()
    finally:
        server.close()


@pytest.mark.parametrize("stop", ["cancel", "pause"])
def test_cancel_works_while_the_headers_trickle_in(tmp_path, server_for, gguf_bytes, stop):
    # Before: urlopen blocked until the headers were complete (here ~10 s; for ever at a byte per 29 s).
    server = server_for(trickle_headers=0.2)
    control = Control()
    threading.Timer(0.5, getattr(control, stop)).start()
    t = time.monotonic()
    with pytest.raises(Cancelled if stop == "cancel" else Paused):
        pull(DownloadSpec.from_url(server.url), control=control, folder=tmp_path)
    assert time.monotonic() - t < 1.8


def test_clean_closes_after_progress_are_resumed_not_called_offline(tmp_path, server_for, gguf_bytes):
    # Every response ends cleanly after a tenth of the file. Before: each counted as a failure,
    # and after 5 the download failed as "no source could be reached (offline?)".
    server = server_for(drop_each_after=len(gguf_bytes) // 10 + 1)
    path = pull(spec_for(server.url, gguf_bytes), folder=tmp_path)
    assert path.read_bytes() == gguf_bytes and len(server.requests) >= 10


def test_the_state_file_is_written_under_a_unique_name_and_its_folder_synced(tmp_path, monkeypatch):
    from chatgui.common.io import files
    synced = []
    real_sync = files.fsync_dir
    monkeypatch.setattr(files, "fsync_dir", lambda p: (synced.append(p), real_sync(p)))
    target = tmp_path / "state.json"
    errors = []

    def writer(n):
        try:
            for i in range(60):
                files.atomic_write_json(target, {"writer": n, "i": i})   # as PartialDownload's state
        except OSError as e:          # before: both used state.json.tmp; one renamed the other's away
            errors.append(e)
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[0]
    assert json_load(target)["i"] == 59 and tmp_path in synced
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def json_load(path):
    import json
    return json.loads(path.read_text())


def test_a_short_partial_without_a_validator_is_fetched_again_not_doubled(tmp_path, server_for, gguf_bytes):
    server = server_for(drop_once_at=1000, etag=None)
    assert pull(DownloadSpec.from_url(server.url), folder=tmp_path).read_bytes() == gguf_bytes


# -- the Hugging Face hub: the sha256 from the hub's file metadata, checked (a fake hub on 127.0.0.1) ---------
import io  # noqa: E402

from fake_hub import FakeHub  # noqa: E402

from chatgui.models import hub as hub_module  # noqa: E402
from chatgui.models.catalog import CatalogEntry  # noqa: E402
from chatgui.models.library import installed_path  # noqa: E402

HUB_REPO, HUB_FILE = "someone/Tiny-GGUF", "tiny-Q8_0.gguf"


@pytest.fixture
def fake_hub(gguf_bytes, monkeypatch):
    made = []

    def make(**kw):
        h = FakeHub(HUB_REPO, HUB_FILE, gguf_bytes, **kw)
        made.append(h)
        monkeypatch.setenv(hub_module.HUB_URL_ENV, h.url)
        return h
    yield make
    for h in made:
        h.close()


def hub_entry(sha256: str | None = None, size: int = 1_000_000, revision: str = "main") -> CatalogEntry:
    return CatalogEntry(id="tiny-hub", name="Tiny from the hub", file=HUB_FILE, parameters="1M", quantization="Q8_0",
                        size=size, sha256=sha256, licence="MIT", languages=("English",), context_length=256,
                        kind="chat", good_at="tests", layers=2, kv_heads=2, head_dim=8,
                        sources=(Source("hub", repo=HUB_REPO, path=HUB_FILE, revision=revision),))


def test_hub_file_metadata_gives_the_lfs_sha256_and_size(fake_hub, gguf_bytes):
    hub = fake_hub()
    meta = hub_module.file_metadata(hub_entry().sources[0])
    assert meta.sha256 == hashlib.sha256(gguf_bytes).hexdigest() and meta.size == len(gguf_bytes)
    assert meta.commit == hub.commit
    assert hub.requests == [("GET", f"/api/models/{HUB_REPO}/revision/main"),
                            ("POST", f"/api/models/{HUB_REPO}/paths-info/{hub.commit}")]


def test_an_unpinned_hub_model_is_checked_against_the_hubs_sha256_and_installed(tmp_path, fake_hub, gguf_bytes):
    hub = fake_hub()
    entry = hub_entry(size=len(gguf_bytes) * 3)          # the catalog's size is only approximate
    seen = []
    path = pull(DownloadSpec.from_entry(entry), progress=seen.append, folder=tmp_path)
    assert path.read_bytes() == gguf_bytes
    assert "verify" in {p.stage for p in seen}
    assert ("GET", f"/{HUB_REPO}/resolve/{hub.commit}/{HUB_FILE}") in hub.requests    # the version read
    assert installed_path(entry, tmp_path) == path
    # a second pull finds it installed: no new request to the hub
    before = len(hub.requests)
    assert pull(DownloadSpec.from_entry(entry), folder=tmp_path) == path and len(hub.requests) == before


def test_a_hub_file_that_differs_from_the_hubs_sha256_is_refused(tmp_path, fake_hub, gguf_bytes):
    fake_hub(reported_sha256="ab" * 32)                    # the hub's metadata names other bytes
    with pytest.raises(HashMismatchError, match="not the expected one"):
        pull(DownloadSpec.from_entry(hub_entry()), folder=tmp_path)
    assert not (tmp_path / HUB_FILE).exists()
    assert not list((tmp_path / ".partial").glob("*.part"))


def test_a_pinned_hub_model_whose_hub_file_changed_is_refused_before_downloading(tmp_path, fake_hub, gguf_bytes):
    hub = fake_hub()
    entry = hub_entry(sha256="cd" * 32, size=len(gguf_bytes))
    with pytest.raises(HashMismatchError, match="holds another file"):
        pull(DownloadSpec.from_entry(entry), folder=tmp_path)
    assert not any("/resolve/" in path for _, path in hub.requests), "bytes were fetched for a file known to be wrong"
    assert not (tmp_path / HUB_FILE).exists()


def test_a_hub_without_the_file_or_unreachable_is_offline_with_a_way_to_add_it(tmp_path, fake_hub, monkeypatch):
    fake_hub(revision="other-branch")                      # the entry asks for main: 404
    with pytest.raises(OfflineError, match="no source could be reached"):
        pull(DownloadSpec.from_entry(hub_entry()), folder=tmp_path)
    monkeypatch.setenv(hub_module.HUB_URL_ENV, "http://127.0.0.1:9")    # nothing listens
    with pytest.raises(OfflineError, match=HUB_FILE):
        pull(DownloadSpec.from_entry(hub_entry()), folder=tmp_path)


@pytest.mark.parametrize("answer,what", [
    (b"not json", "not JSON"),
    (b'{"path": "x"}', "not a list"),
    (b'[{"path": "tiny-Q8_0.gguf", "type": "file", "size": 5}]', "no LFS sha256"),
    (b'[{"path": "tiny-Q8_0.gguf", "lfs": {"oid": "xyz", "size": 5}}]', "not valid"),
])
def test_nonsense_hub_metadata_is_a_clear_error(answer, what, monkeypatch):
    monkeypatch.setattr(hub_module.urllib.request, "urlopen", lambda *a, **k: io.BytesIO(answer))
    commit = "c" * 40                        # a commit needs no question about the revision
    with pytest.raises(ModelFetchError, match=what):
        hub_module.file_metadata(hub_entry(revision=commit).sources[0])
