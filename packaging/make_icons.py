"""Render the app icon from assets/icon.svg with Qt's SVG renderer.

Writes assets/icons/chatgui-<N>.png, assets/icon.ico (Windows), assets/icon.icns (macOS), and
copies the SVG and the PNGs into chatgui/assets/ (package data). Run from anywhere:

    python packaging/make_icons.py

ICO and ICNS are written by hand: both formats can hold PNG images as they are.
"""
from __future__ import annotations

import os
import shutil
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "assets" / "icon.svg"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# icns entry types that hold PNG data, by pixel size (macOS 10.7+).
ICNS_TYPES = ((b"icp4", 16), (b"icp5", 32), (b"icp6", 64), (b"ic07", 128), (b"ic08", 256),
              (b"ic09", 512), (b"ic10", 1024))


def render_png(svg: Path, size: int) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG for Qt")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.convertToFormat(QImage.Format.Format_ARGB32).save(buffer, "PNG")
    buffer.close()
    return bytes(data)


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICO file whose images are PNGs (a 256 px entry is written as width/height 0)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, blobs = b"", b""
    for n in sizes:
        side = 0 if n >= 256 else n
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(pngs[n]), offset)
        blobs += pngs[n]
        offset += len(pngs[n])
    return header + entries + blobs


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICNS file of PNG entries: b'icns', total length, then (type, length, data) records."""
    body = b"".join(kind + struct.pack(">I", 8 + len(pngs[n])) + pngs[n] for kind, n in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (fonts, plugins)
    all_sizes = sorted(set(PNG_SIZES) | set(ICO_SIZES) | {n for _, n in ICNS_TYPES})
    pngs = {n: render_png(SVG, n) for n in all_sizes}

    icons_dir = ROOT / "assets" / "icons"
    package_dir = ROOT / "chatgui" / "assets"
    icons_dir.mkdir(parents=True, exist_ok=True)
    package_dir.mkdir(parents=True, exist_ok=True)
    for n in PNG_SIZES:
        (icons_dir / f"chatgui-{n}.png").write_bytes(pngs[n])
        (package_dir / f"icon-{n}.png").write_bytes(pngs[n])
    (ROOT / "assets" / "icon.ico").write_bytes(ico_bytes({n: pngs[n] for n in ICO_SIZES}))
    (ROOT / "assets" / "icon.icns").write_bytes(icns_bytes(pngs))
    shutil.copyfile(SVG, package_dir / "icon.svg")
    print(f"wrote {len(PNG_SIZES)} PNGs, icon.ico, icon.icns from {SVG.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
