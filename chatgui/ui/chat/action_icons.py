"""The small icons of a message's actions (copy, code, regenerate, replay, edit), drawn here in
a grey that reads on light and dark backgrounds alike, so no image files or icon theme are needed."""
from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPainterPath, QPen, QPixmap

GREY = QColor("#8b8f98")
SIZE = 32   # drawn at 2x for sharp 16 px icons


def _painter(pixmap: QPixmap) -> QPainter:
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(GREY, 2.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
    return painter


@lru_cache(maxsize=None)
def action_icon(kind: str) -> QIcon:
    pixmap = QPixmap(SIZE, SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = _painter(pixmap)
    if kind == "copy":
        p.drawRoundedRect(QRectF(10, 10, 16, 17), 3, 3)
        p.drawPolyline([QPointF(6, 21), QPointF(6, 6), QPointF(19, 6)])
    elif kind == "code":
        font = QFont()
        font.setPixelSize(15)
        font.setBold(True)
        p.setFont(font)
        p.setPen(GREY)
        p.drawText(QRectF(0, 0, SIZE, SIZE), Qt.AlignmentFlag.AlignCenter, "</>")
    elif kind == "regenerate":
        p.drawArc(QRectF(7, 7, 18, 18), 60 * 16, 290 * 16)
        path = QPainterPath(QPointF(21, 4))
        path.lineTo(21.5, 9.5)
        path.lineTo(16, 10)
        p.drawPath(path)
    elif kind == "replay":
        path = QPainterPath(QPointF(11, 7))
        path.lineTo(25, 16)
        path.lineTo(11, 25)
        path.closeSubpath()
        p.drawPath(path)
    elif kind == "new":   # +: a new chat
        p.drawLine(QPointF(16, 7), QPointF(16, 25))
        p.drawLine(QPointF(7, 16), QPointF(25, 16))
    elif kind == "inspector":   # a bar chart: the sampling inspector's probabilities
        for x, top in ((8, 17), (16, 7), (24, 12)):
            p.drawLine(QPointF(x, 26), QPointF(x, top))
    elif kind == "more":   # ⋯: a row's menu
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(GREY)
        for x in (8, 16, 24):
            p.drawEllipse(QPointF(x, 16), 2.4, 2.4)
    elif kind == "settings":   # three sliders: the settings panel
        for y, knob in ((8, 20), (16, 11), (24, 18)):
            p.drawLine(QPointF(5, y), QPointF(knob - 3.5, y))   # the line stops at the knob (a ring)
            p.drawLine(QPointF(knob + 3.5, y), QPointF(27, y))
            p.drawEllipse(QPointF(knob, y), 3.5, 3.5)
    elif kind == "edit":
        path = QPainterPath(QPointF(7, 25))
        path.lineTo(8.5, 19)
        path.lineTo(21, 6.5)
        path.lineTo(25.5, 11)
        path.lineTo(13, 23.5)
        path.closeSubpath()
        p.drawPath(path)
    p.end()
    return QIcon(pixmap)
