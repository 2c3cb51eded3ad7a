"""The app icon files, the freedesktop menu entry, and the bundle recipe (no bundle is built here)."""
from __future__ import annotations

import ast
import configparser
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from chatgui import desktop_entry
from chatgui.assets import ICON_SIZES, app_icon, icon_path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def load_make_icons():
    spec = importlib.util.spec_from_file_location("make_icons", ROOT / "packaging" / "make_icons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def xdg_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def read_desktop_file(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


# ---- icon files --------------------------------------------------------------------------

@pytest.mark.parametrize("size", ICON_SIZES)
def test_png_icons_have_their_pixel_size(size):
    for path in (ASSETS / "icons" / f"chatgui-{size}.png", icon_path(size)):
        assert png_size(path.read_bytes()) == (size, size), path


def test_package_copies_match_the_sources():
    assert icon_path().read_bytes() == (ASSETS / "icon.svg").read_bytes()
    for n in ICON_SIZES:
        assert icon_path(n).read_bytes() == (ASSETS / "icons" / f"chatgui-{n}.png").read_bytes()


def test_icon_path_picks_the_nearest_size_up():
    assert icon_path().name == "icon.svg"
    assert icon_path(32).name == "icon-32.png"
    assert icon_path(20).name == "icon-24.png"
    assert icon_path(4096).name == "icon-512.png"


def test_svg_renders_with_qt(qapp):
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(icon_path()))
    assert renderer.isValid()
    assert renderer.defaultSize().width() == renderer.defaultSize().height() == 512
    icon = app_icon()
    assert not icon.isNull()
    assert {s.width() for s in icon.availableSizes()} == set(ICON_SIZES)


def test_ico_parses():
    data = (ASSETS / "icon.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind) == (0, 1) and count >= 5
    sizes = set()
    for i in range(count):
        w, h, _, _, planes, bpp, length, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * i)
        assert planes == 1 and bpp == 32 and offset + length <= len(data)
        side = w or 256
        assert png_size(data[offset:offset + length]) == (side, side)
        sizes.add(side)
    assert {16, 32, 48, 256} <= sizes


def test_icns_parses():
    data = (ASSETS / "icon.icns").read_bytes()
    assert data[:4] == b"icns" and struct.unpack(">I", data[4:8])[0] == len(data)
    expected = dict(load_make_icons().ICNS_TYPES)
    seen, pos = {}, 8
    while pos < len(data):
        kind, length = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
        assert length > 8 and pos + length <= len(data)
        seen[kind] = png_size(data[pos + 8:pos + length])
        pos += length
    assert pos == len(data)
    assert seen == {k: (n, n) for k, n in expected.items()}


def test_ico_and_icns_writers_round_trip():
    make_icons = load_make_icons()
    fake = {16: b"\x89PNG-16", 256: b"\x89PNG-256"}
    ico = make_icons.ico_bytes(fake)
    assert struct.unpack_from("<HHH", ico) == (0, 1, 2)
    assert ico.endswith(fake[16] + fake[256])
    assert struct.unpack_from("<BB", ico, 6 + 16) == (0, 0)  # 256 px is written as 0
    icns = make_icons.icns_bytes({n: b"x" * n for _, n in make_icons.ICNS_TYPES})
    assert struct.unpack(">I", icns[4:8])[0] == len(icns)


# ---- desktop entry -----------------------------------------------------------------------

def test_install_writes_the_desktop_file_and_icons(xdg_home):
    written = desktop_entry.install()
    desktop = xdg_home / "applications" / "chatgui.desktop"
    assert desktop in written and desktop.is_file()
    entry = read_desktop_file(desktop)
    assert entry["Type"] == "Application"
    assert entry["Name"] == "chatgui" and entry["GenericName"] == "AI Chat"
    assert entry["Icon"] == "chatgui" and entry["Terminal"] == "false"
    assert entry["Categories"] == "Utility;Chat;Network;"
    assert entry["StartupWMClass"] == "chatgui"
    assert entry["Name[zh_CN]"] and entry["Comment[zh_CN]"] and entry["Keywords"]
    assert entry["Exec"].split()[0].startswith("/")
    for n in ICON_SIZES:
        png = xdg_home / "icons" / "hicolor" / f"{n}x{n}" / "apps" / "chatgui.png"
        assert png in written and png_size(png.read_bytes()) == (n, n)
    svg = xdg_home / "icons" / "hicolor" / "scalable" / "apps" / "chatgui.svg"
    assert svg.read_bytes() == icon_path().read_bytes()


def test_install_is_idempotent_and_uninstall_removes_exactly_those(xdg_home):
    other = xdg_home / "applications" / "other.desktop"
    other.parent.mkdir(parents=True)
    other.write_text("[Desktop Entry]\n")
    first = desktop_entry.install()
    assert desktop_entry.install() == first
    removed = desktop_entry.uninstall()
    assert sorted(removed) == sorted(first)
    assert not any(p.exists() for p in first)
    assert other.exists()
    assert desktop_entry.uninstall() == []


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-utils not installed")
def test_desktop_file_validates(xdg_home):
    desktop_entry.install(["/opt/chat gui/chatgui"])
    r = subprocess.run(["desktop-file-validate", str(desktop_entry.desktop_file_path())],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "error" not in r.stdout + r.stderr


def test_exec_quoting_follows_the_spec():
    assert desktop_entry.exec_value(["/usr/bin/chatgui"]) == "/usr/bin/chatgui"
    assert desktop_entry.exec_value(["/opt/my apps/py", "-m", "chatgui"]) == '"/opt/my apps/py" -m chatgui'
    assert desktop_entry.exec_value(["/a$b", "50%"]) == '"/a\\\\$b" 50%%'


def test_launch_command(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert desktop_entry.launch_command() == [os.path.abspath(sys.executable)]
    monkeypatch.delattr(sys, "frozen")
    monkeypatch.setattr(desktop_entry.shutil, "which", lambda name: None)
    assert desktop_entry.launch_command()[1:] == ["-m", "chatgui"]


def test_handle_cli_dispatches_only_its_flags(xdg_home, monkeypatch, capsys):
    monkeypatch.setattr(desktop_entry.sys, "platform", "linux")
    assert desktop_entry.handle_cli(["--model", "x.gguf"]) is None
    assert desktop_entry.handle_cli(["--install-desktop-entry"]) == 0
    assert desktop_entry.desktop_file_path().is_file()
    assert desktop_entry.handle_cli(["--uninstall-desktop-entry"]) == 0
    assert not desktop_entry.desktop_file_path().exists()
    assert "removed" in capsys.readouterr().out


# ---- bundle recipe -----------------------------------------------------------------------

def test_pyinstaller_spec_is_python_and_names_the_icons():
    text = (ROOT / "packaging" / "chatgui.spec").read_text()
    ast.parse(text)
    for needle in ('"icon.ico"', '"icon.icns"', '"launcher.py"', "COLLECT(", "console=False"):
        assert needle in text
    ast.parse((ROOT / "packaging" / "launcher.py").read_text())
