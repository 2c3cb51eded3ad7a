"""Bounded, timed connections: uvicorn's h11 protocol with the limits it lacks.

uvicorn closes a connection that idles between requests (timeout_keep_alive), but nothing
closes one that never finishes sending a request: a client can open connections, send half a
header (or nothing) and hold them open for ever. Here:

- a request (headers and body) must arrive within `read_timeout` seconds of its first byte,
  or of the connection opening; otherwise the connection is closed. Generating the reply is
  not limited: the clock stops once the whole request is in.
- at most `max_connections` connections are open at once. When one more arrives, the
  connection that has waited longest without a whole request (silent, half a header, a body
  trickling in, or idle between keep-alive requests) is closed to make room: 64 slow clients
  no longer shut everyone else out for the read timeout. Only when every connection has a
  request in progress is the new one closed at once.
"""
from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_READ_TIMEOUT = 15.0
DEFAULT_MAX_CONNECTIONS = 64


class BoundedH11Protocol(H11Protocol):
    read_timeout = DEFAULT_READ_TIMEOUT
    max_connections = DEFAULT_MAX_CONNECTIONS
    _read_deadline: asyncio.TimerHandle | None = None
    _waiting_since: float | None = None     # loop time since when no whole request is in; None while one is

    @classmethod
    def with_limits(cls, read_timeout: float, max_connections: int) -> type["BoundedH11Protocol"]:
        return type(cls.__name__, (cls,), {"read_timeout": read_timeout, "max_connections": max_connections})

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._waiting_since = self.loop.time()
        open_now = [c for c in self.connections if not c.transport.is_closing()]
        if len(open_now) > self.max_connections and not self._make_room(open_now):
            self.logger.warning("Too many open connections (%d), each with a request in progress: closing a "
                                "new one.", self.max_connections)
            transport.close()
            return
        self._arm()

    def _make_room(self, open_now) -> bool:
        """Close the connection waiting longest for its request; False if none is waiting."""
        waiting = [c for c in open_now if c is not self and getattr(c, "_waiting_since", None) is not None]
        if not waiting:
            return False
        stalest = min(waiting, key=lambda c: c._waiting_since)
        self.logger.info("%d connections open: closing the one that has waited %.1f s without a request.",
                         len(open_now) - 1, self.loop.time() - stalest._waiting_since)
        stalest.transport.close()
        return True

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self._arm()      # a new request begins (after a keep-alive pause) or continues
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._disarm()   # the whole request is in
            self._waiting_since = None

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        self._disarm()       # between requests the keep-alive timeout applies
        self._waiting_since = self.loop.time()
        super().on_response_complete()

    def _arm(self) -> None:
        if self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.logger.info("A client took more than %.0f s to send its request: closing.", self.read_timeout)
            self.transport.close()
