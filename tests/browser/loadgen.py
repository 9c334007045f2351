"""A Redis load generator for the web view's load test: pipelined ``PING``
commands over one raw TCP connection, paced by the clock (a batch every
``interval`` seconds, however fast the replies come), with the replies read
on a thread of their own. Each command is one ``redis.command.completed``
event on the edge it goes through.

Everything is bounded: the sending stops at ``duration`` (commands due but
not sent by then are never sent), and the reading at ``duration +
drain`` seconds."""

from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

PING = b"*1\r\n$4\r\nPING\r\n"
PONG = b"+PONG\r\n"


@dataclass
class LoadResult:
    """What a :class:`PingLoad` did."""

    planned: int = 0
    sent: int = 0
    replies: int = 0
    batches_sent: int = 0
    #: Batches that went out more than one interval after they were due.
    late_batches: int = 0
    started_at: float = 0.0
    send_seconds: float = 0.0
    drain_seconds: float = 0.0
    errors: List[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "planned": self.planned,
            "sent": self.sent,
            "replies": self.replies,
            "batches_sent": self.batches_sent,
            "late_batches": self.late_batches,
            "send_seconds": round(self.send_seconds, 3),
            "drain_seconds": round(self.drain_seconds, 3),
            "errors": self.errors,
        }


class PingLoad:
    """``batch`` pipelined PINGs every ``interval`` seconds for ``duration``
    seconds to ``address`` (``(host, port)``). :meth:`start` returns at
    once; :meth:`join` waits for the end (bounded) and returns the
    :class:`LoadResult`."""

    def __init__(
        self,
        address: Tuple[str, int],
        *,
        batch: int = 200,
        interval: float = 0.010,
        duration: float = 30.0,
        drain: float = 20.0,
    ) -> None:
        self.address = address
        self.batch = batch
        self.interval = interval
        self.duration = duration
        self.drain = drain
        self.result = LoadResult(planned=batch * int(round(duration / interval)))
        self._payload = PING * batch
        self._sock: Optional[socket.socket] = None
        self._sender: Optional[threading.Thread] = None
        self._reader: Optional[threading.Thread] = None
        self._sending_done = threading.Event()
        self._lock = threading.Lock()

    # The counters the test samples while the load runs.
    def sent(self) -> int:
        with self._lock:
            return self.result.sent

    def replies(self) -> int:
        with self._lock:
            return self.result.replies

    def sending_done(self) -> bool:
        return self._sending_done.is_set()

    def start(self) -> "PingLoad":
        sock = socket.create_connection(self.address, timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A check that the edge answers at all, before the clock starts.
        sock.sendall(PING)
        got = b""
        while len(got) < len(PONG):
            chunk = sock.recv(64)
            if not chunk:
                raise ConnectionError(f"{self.address} closed the connection before PONG")
            got += chunk
        if got != PONG:
            raise ConnectionError(f"{self.address} answered {got!r} to PING")
        sock.setblocking(False)
        self._sock = sock
        self.result.started_at = time.monotonic()
        self._reader = threading.Thread(target=self._read, name="loadgen-reader", daemon=True)
        self._sender = threading.Thread(target=self._send, name="loadgen-sender", daemon=True)
        self._reader.start()
        self._sender.start()
        return self

    def _send(self) -> None:
        assert self._sock is not None
        sock = self._sock
        start = self.result.started_at
        end = start + self.duration
        total_batches = int(round(self.duration / self.interval))
        sent_bytes = 0
        n = 0
        try:
            while n < total_batches:
                due = start + n * self.interval
                now = time.monotonic()
                if now >= end:
                    break
                if due > now:
                    time.sleep(due - now)
                elif now - due > self.interval:
                    self.result.late_batches += 1
                view = memoryview(self._payload)
                # The socket is non-blocking: a peer that cannot keep up
                # holds a batch back, never past the end.
                while view:
                    if time.monotonic() >= end:
                        break
                    select.select([], [sock], [], 0.05)
                    try:
                        written = sock.send(view)
                    except BlockingIOError:
                        continue
                    view = view[written:]
                    sent_bytes += written
                    with self._lock:
                        self.result.sent = sent_bytes // len(PING)
                if view:
                    break
                n += 1
                self.result.batches_sent = n
        except OSError as e:
            self.result.errors.append(f"send: {e}")
        finally:
            self.result.send_seconds = time.monotonic() - start
            self._sending_done.set()

    def _read(self) -> None:
        assert self._sock is not None
        sock = self._sock
        start = self.result.started_at
        deadline = start + self.duration + self.drain
        pending = b""
        try:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                if self._sending_done.is_set() and self.replies() >= self.sent():
                    break
                readable, _, _ = select.select([sock], [], [], min(0.2, deadline - now))
                if not readable:
                    continue
                try:
                    chunk = sock.recv(1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    self.result.errors.append("read: the connection closed")
                    break
                pending += chunk
                cut = pending.rfind(PONG)
                if cut < 0:
                    continue
                cut += len(PONG)
                whole, pending = pending[:cut], pending[cut:]
                n = len(whole) // len(PONG)
                if whole != PONG * n:
                    self.result.errors.append(f"read: unexpected reply bytes {whole[:80]!r}")
                    break
                with self._lock:
                    self.result.replies += n
        except OSError as e:
            self.result.errors.append(f"read: {e}")
        finally:
            self.result.drain_seconds = time.monotonic() - start - self.result.send_seconds

    def join(self) -> LoadResult:
        """Waits for both threads (at most ``duration + drain + 5`` seconds
        from the start), closes the connection, returns the result."""
        limit = self.result.started_at + self.duration + self.drain + 5
        for thread in (self._sender, self._reader):
            if thread is not None:
                thread.join(max(0.0, limit - time.monotonic()))
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        return self.result
