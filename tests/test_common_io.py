"""chatgui.common.io: the one implementation of atomic writes, sha256, the file lock, the memory
probe and the address rules that every layer calls."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from chatgui.common import io
from chatgui.common.io import files as io_files


def _temps(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_replaces_and_syncs_the_file_and_the_folder(tmp_path, monkeypatch):
    target = tmp_path / "settings.json"
    target.write_text("old")
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.path.isdir(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else None)
        real_fsync(fd)

    monkeypatch.setattr(io_files.os, "fsync", fsync)
    io.atomic_write_text(target, "new ü")
    assert target.read_text(encoding="utf-8") == "new ü"
    assert _temps(tmp_path) == []
    if os.name != "nt" and os.path.exists("/proc/self/fd"):
        assert synced == [False, True]     # the file first, then its folder (the rename)


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, failure):
    target = tmp_path / "chat.json"
    target.write_text("old")
    with pytest.raises(type(failure)):
        with io.atomic_writer(target) as f:
            f.write(b"half of it")
            raise failure
    assert target.read_text() == "old"
    assert _temps(tmp_path) == []


def test_a_failed_rename_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    monkeypatch.setattr(io_files.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(13, "denied")))
    with pytest.raises(OSError):
        io.atomic_write_bytes(target, b"data")
    assert not target.exists() and _temps(tmp_path) == []


def test_atomic_write_with_a_path_filler(tmp_path):
    target = tmp_path / "db.sqlite3"
    io.atomic_write(target, lambda tmp: tmp.write_bytes(b"filled"))
    assert target.read_bytes() == b"filled"

    def fail(tmp):
        tmp.write_bytes(b"partial")
        raise ValueError("bad")

    with pytest.raises(ValueError):
        io.atomic_write(target, fail)
    assert target.read_bytes() == b"filled" and _temps(tmp_path) == []


def test_two_writers_never_share_a_temp_name(tmp_path):
    target = tmp_path / "same.json"
    with io.atomic_writer(target) as a, io.atomic_writer(target) as b:
        assert a.name != b.name
        a.write(b"a")
        b.write(b"b")
    assert target.read_bytes() == b"a"       # (the outer block ends last)
    assert _temps(tmp_path) == []


def test_sha256_file_reports_progress_and_can_be_stopped(tmp_path):
    path = tmp_path / "blob"
    data = os.urandom(io_files.BLOCK + 123)
    path.write_bytes(data)
    seen = []
    assert io.sha256_file(path, lambda d, t: seen.append((d, t))) == hashlib.sha256(data).hexdigest()
    assert seen == [(io_files.BLOCK, len(data)), (len(data), len(data))]

    class Stop(Exception):
        pass

    def stop(done, total):
        raise Stop

    with pytest.raises(Stop):
        io.sha256_file(path, stop)


def test_the_lock_excludes_another_process_and_ends_with_it(tmp_path):
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from chatgui.common.io import LockFile; l = LockFile(sys.argv[1]);"
                               "assert l.try_acquire(); l.write_owner(); print('LOCKED', flush=True); time.sleep(60)",
         str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        lock = io.LockFile(path)
        assert not lock.try_acquire() and not lock.held
        assert lock.owner() == holder.pid
    finally:
        holder.kill()
        holder.wait()
    assert lock.try_acquire()       # the OS dropped the killed holder's lock
    lock.release()


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="needs POSIX permissions, not root")
def test_a_read_only_lock_file_is_locked_only_when_allowed(tmp_path):
    path = tmp_path / "ro.lock"
    path.write_text("")
    path.chmod(0o444)
    with pytest.raises(OSError):
        io.LockFile(path).try_acquire()
    lock = io.LockFile(path, allow_read_only=True)
    assert lock.try_acquire()
    lock.write_owner()              # quietly nothing: the file cannot be written
    assert path.read_text() == ""
    lock.release()


def test_memory_probe():
    ram = io.system_ram()
    assert ram is not None and 0 < ram.free <= ram.total and ram.where == "RAM"
    assert io.available_ram() > 0


@pytest.mark.parametrize("host, loopback", [
    ("localhost", True), ("LOCALHOST", True), ("app.localhost", True), ("127.0.0.1", True), ("127.8.9.1", True),
    ("::1", True), ("[::1]", True), ("0.0.0.0", False), ("::", False), ("192.168.1.2", False),
    ("localhost.example.com", False), ("example.com", False), ("", False)])
def test_loopback_hosts(host, loopback):
    assert io.is_loopback_host(host) is loopback


@pytest.mark.parametrize("url, shown", [
    ("http://user:secret@example.com:8080/v1?x=1", "http://example.com:8080/v1?x=1"),
    ("https://token@example.com/v1", "https://example.com/v1"),
    ("http://u:p@[::1]:8000/v1", "http://[::1]:8000/v1"),
    ("http://example.com/v1", "http://example.com/v1")])
def test_url_without_credentials(url, shown):
    assert io.url_without_credentials(url) == shown
