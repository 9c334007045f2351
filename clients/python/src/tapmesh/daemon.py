"""The daemon (``tapmesh serve``): found at an address, or started.

:meth:`Daemon.ensure` is what :meth:`tapmesh.Environment.up` uses: the
daemon at the given address (default ``$TAPMESH_DAEMON``, else
``http://127.0.0.1:7411``) if one answers there, else a new ``tapmesh serve
--listen 127.0.0.1:0`` whose address is read from its first line of output.
A daemon this package started is stopped by :meth:`Daemon.stop` (SIGTERM:
it stops its environments gracefully), and dies with the Python process
that started it (``PR_SET_PDEATHSIG``, on Linux).
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Iterable, List, Optional, Sequence, Union

from ._http import HttpClient
from .errors import DaemonStartError

__all__ = ["Daemon", "DEFAULT_DAEMON", "find_binary"]

#: Where ``tapmesh serve`` listens unless told otherwise.
DEFAULT_DAEMON = "http://127.0.0.1:7411"

_LISTENING = "tapmesh serve: listening on "


def default_address() -> str:
    """``$TAPMESH_DAEMON``, else :data:`DEFAULT_DAEMON`."""
    return os.environ.get("TAPMESH_DAEMON") or DEFAULT_DAEMON


def find_binary(search_from: Iterable[Union[str, Path]] = ()) -> str:
    """The ``tapmesh`` binary: ``$TAPMESH_BIN``, else ``tapmesh`` on
    ``PATH``, else ``target/debug/tapmesh`` of the tapmesh repository
    containing the current directory or one of ``search_from`` (a checkout
    where it was built). Raises :class:`DaemonStartError` naming what it
    tried."""
    explicit = os.environ.get("TAPMESH_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise DaemonStartError(f"$TAPMESH_BIN is {explicit}, which is not an executable file")
        return explicit
    on_path = shutil.which("tapmesh")
    if on_path:
        return on_path
    tried: List[str] = []
    starts = [Path.cwd(), *(Path(p) for p in search_from), Path(__file__).resolve().parent]
    for start in starts:
        start = start.resolve()
        for directory in (start, *start.parents):
            candidate = directory / "target" / "debug" / "tapmesh"
            if (directory / "Cargo.toml").is_file():
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    return str(candidate)
                tried.append(str(candidate))
    where = f" nor {', '.join(dict.fromkeys(tried))}" if tried else ""
    raise DaemonStartError(
        "no tapmesh binary: $TAPMESH_BIN is not set, `tapmesh` is not on PATH"
        f"{where} exists (build it with `cargo build --bin tapmesh`)"
    )


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:  # noqa: BLE001 - best effort, never fail the exec
        pass


class Daemon:
    """A tapmesh daemon's address, and its process if this package started it."""

    def __init__(
        self,
        url: str,
        process: "Optional[subprocess.Popen[bytes]]" = None,
        log_path: Optional[Path] = None,
    ) -> None:
        self.http = HttpClient(url)
        #: ``http://host:port``.
        self.url: str = self.http.url
        #: The ``tapmesh serve`` process, when this package started it.
        self.process = process
        #: Where the started daemon's stderr (its log) goes.
        self.log_path = log_path

    def __repr__(self) -> str:
        owned = f", pid={self.process.pid}" if self.process is not None else ""
        return f"Daemon({self.url!r}{owned})"

    @property
    def started(self) -> bool:
        """Whether this package started (and so stops) the daemon."""
        return self.process is not None

    def healthy(self, timeout: float = 1.0) -> bool:
        """Whether it answers ``GET /health``."""
        return self.http.healthy(timeout)

    @classmethod
    def connect(cls, url: Optional[str] = None) -> "Daemon":
        """The daemon at ``url`` (default :func:`default_address`), which must
        answer; :class:`DaemonStartError` if none does."""
        daemon = cls(url or default_address())
        if not daemon.healthy():
            raise DaemonStartError(f"no tapmesh daemon answers at {daemon.url}")
        return daemon

    @classmethod
    def ensure(
        cls,
        url: Optional[str] = None,
        *,
        binary: Optional[str] = None,
        search_from: Sequence[Union[str, Path]] = (),
        **start_options: Any,
    ) -> "Daemon":
        """The daemon at ``url`` (default :func:`default_address`) if one
        answers there, else a new one started with :meth:`start` on a free
        port."""
        existing = cls(url or default_address())
        if existing.healthy():
            return existing
        return cls.start(binary=binary, search_from=search_from, **start_options)

    @classmethod
    def start(
        cls,
        *,
        binary: Optional[str] = None,
        listen: str = "127.0.0.1:0",
        state_dir: Optional[Union[str, Path]] = None,
        cache_dir: Optional[Union[str, Path]] = None,
        ttl: Optional[str] = None,
        args: Sequence[str] = (),
        search_from: Sequence[Union[str, Path]] = (),
        timeout: float = 30.0,
        die_with_parent: bool = True,
    ) -> "Daemon":
        """Starts ``tapmesh serve --listen LISTEN`` and waits (up to
        ``timeout`` seconds) for the address it prints. Its stderr goes to a
        temporary file (``log_path``), whose last lines a failure shows.

        With ``die_with_parent`` (Linux), the daemon gets SIGTERM when the
        thread that started it ends (``PR_SET_PDEATHSIG``), so a test run
        that is killed leaves no daemon behind; start it from a thread that
        outlives its use (the main thread, as pytest does), or pass
        ``False`` and stop it yourself."""
        exe = binary or find_binary(search_from)
        command = [exe, "serve", "--listen", listen]
        if state_dir is not None:
            command += ["--state-dir", str(state_dir)]
        if cache_dir is not None:
            command += ["--cache-dir", str(cache_dir)]
        if ttl is not None:
            command += ["--ttl", ttl]
        command += list(args)
        log_file = tempfile.NamedTemporaryFile(
            prefix="tapmesh-serve-", suffix=".log", delete=False
        )
        log_path = Path(log_file.name)
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log_file,
                preexec_fn=(
                    _die_with_parent
                    if die_with_parent and sys.platform.startswith("linux")
                    else None
                ),
            )
        except OSError as e:
            log_file.close()
            raise DaemonStartError(f"could not run {' '.join(command)}: {e}") from e
        finally:
            log_file.close()
        assert process.stdout is not None
        line = _first_line(process.stdout, timeout)
        if line is None or _LISTENING not in line:
            process.kill()
            process.wait()
            tail = _tail(log_path)
            said = f"; it printed {line!r}" if line else ""
            status = process.returncode
            raise DaemonStartError(
                f"{' '.join(command)} did not say where it listens within {timeout:.0f}s"
                f" (exit status {status}){said}"
                + ("\n" + "\n".join(f"  | {t}" for t in tail) if tail else "")
            )
        url = line.split(_LISTENING, 1)[1].strip()
        _drain(process.stdout)
        return cls(url, process, log_path)

    def stop(self, timeout: float = 60.0) -> None:
        """Stops a daemon this package started (SIGTERM, which stops its
        environments gracefully; SIGKILL if it is still running after
        ``timeout`` seconds). Does nothing for a daemon it did not start."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None
        if self.log_path is not None:
            try:
                self.log_path.unlink()
            except OSError:
                pass

    def log_tail(self, lines: int = 20) -> List[str]:
        """The last lines the started daemon wrote to stderr."""
        return _tail(self.log_path, lines) if self.log_path else []

    def __enter__(self) -> "Daemon":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _first_line(stream: IO[bytes], timeout: float) -> Optional[str]:
    """The first line of ``stream`` within ``timeout`` seconds, or ``None``
    (timeout, or the stream ended first)."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = stream.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
    return buf.split(b"\n", 1)[0].decode("utf-8", "replace") or None


def _drain(stream: IO[bytes]) -> None:
    """Reads and drops the rest of the daemon's stdout, so that it never
    blocks (or fails) writing to it."""

    def run() -> None:
        try:
            while os.read(stream.fileno(), 65536):
                pass
        except OSError:
            pass
        finally:
            stream.close()

    threading.Thread(target=run, name="tapmesh-serve-stdout", daemon=True).start()


def _tail(path: Optional[Path], lines: int = 20) -> List[str]:
    if path is None:
        return []
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]
