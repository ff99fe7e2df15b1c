"""Where nicviz finds things: the data root, shipped models and reference curves, the
results folder, and atomic file writes. Works from a checkout and from an installed wheel.

- data root: ``--data`` (explicit), else ``$NICVIZ_DATA``, else ``shared/data`` beside
  the checkout (``<checkout>/../shared/data``) when it exists, else none;
- results: ``$NICVIZ_RESULTS``, else ``<checkout>/results`` in a checkout, else
  ``./results`` (the current folder) in an installed package;
- shipped models and CompressAI's published curves live inside the package.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from nicviz import settings

__all__ = ["PACKAGE_DIR", "MODELS_DIR", "REFERENCE_DIR", "checkout_root", "data_root", "results_dir",
           "atomic_write", "atomic_write_bytes", "atomic_write_text", "check_writable", "FileLock",
           "allowed_roots", "allowed_folder"]

PACKAGE_DIR = Path(__file__).resolve().parent
#: nicviz's own trained models (float16 state dicts with metadata JSON)
MODELS_DIR = PACKAGE_DIR / "models"
#: shipped copy of CompressAI's published Kodak curves
REFERENCE_DIR = PACKAGE_DIR / "reference_data" / "compressai-kodak"


def checkout_root() -> Path | None:
    """The source checkout nicviz runs from, or ``None`` for an installed package."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "nicviz").is_dir() else None


def data_root(explicit: str | os.PathLike | None = None) -> Path | None:
    """The data root folder, or ``None`` when none is configured or present."""
    if explicit:
        return Path(explicit).expanduser()
    env = settings.folder("NICVIZ_DATA")
    if env:
        return env
    root = checkout_root()
    default = root.parent / "shared" / "data" if root else None
    return default if default is not None and default.is_dir() else None


def results_dir() -> Path:
    """Precomputed and user results (see the module docstring)."""
    env = settings.folder("NICVIZ_RESULTS")
    if env:
        return env
    root = checkout_root()
    return root / "results" if root else Path.cwd() / "results"


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over
    ``path``: readers see the old file or the new one, never half of one."""
    path = Path(path)
    _refuse_special(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:  # on disk before it replaces the old file (a crash keeps one of them)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder
    return path


def _refuse_special(path: Path) -> None:
    """A device, pipe or socket at ``path`` is never replaced by a file (``--save-recon /dev/full``)."""
    import stat

    from nicviz.errors import NicvizError

    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise NicvizError(f"{path}: not a regular file (a folder, device or pipe); give a file name")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Refuse, before any work, an output that cannot be written: a directory, or a place
    without write permission (its first existing parent decides)."""
    from nicviz.errors import NicvizError

    p = Path(path)
    if p.is_dir():
        raise NicvizError(f"{p}: the {what} names a directory; give a file name")
    _refuse_special(p)
    if p.exists() and not os.access(p, os.W_OK):
        raise NicvizError(f"{p}: the {what} is not writable")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise NicvizError(f"{p}: cannot write the {what} in {parent} (no permission)")
    return p


class FileLock:
    """One writer per file: ``<path>.lock`` holds the writer's process id and start time.
    A second writer gets a one-line :class:`~nicviz.errors.NicvizError` naming that
    process; a lock left by a process that no longer exists (or whose id a new process
    reuses) is taken over. Within one process (the dashboard's sessions share one) an
    in-process registry refuses a second writer the same way."""

    _held: set[str] = set()
    _guard = threading.Lock()

    def __init__(self, path: str | os.PathLike) -> None:
        self.lock = Path(str(path) + ".lock")
        self.key = str(Path(os.path.abspath(self.lock)))
        self.held = False

    def _owner(self) -> tuple[int, float | None] | None:
        try:
            parts = self.lock.read_text().split()
            return int(parts[0]), (float(parts[1]) if len(parts) > 1 else None)
        except (OSError, ValueError, IndexError):
            return None

    def acquire(self) -> None:
        from nicviz.errors import NicvizError

        target = str(self.lock)[: -len(".lock")]
        with FileLock._guard:
            if self.key in FileLock._held:
                raise NicvizError(f"{Path(target).name} is in use by another sweep of this process (another "
                                  "dashboard session?); wait for it to finish or choose another output")
            FileLock._held.add(self.key)
        try:
            self._acquire_file(target)
        except BaseException:
            with FileLock._guard:
                FileLock._held.discard(self.key)
            raise

    def _acquire_file(self, target: str) -> None:
        from nicviz.errors import NicvizError

        self.lock.parent.mkdir(parents=True, exist_ok=True)
        # the lock appears with its content in one step (a hard link of a written file): a
        # reader never sees an empty lock and takes it for a stale one
        tmp = self.lock.with_name(f"{self.lock.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
        try:
            for _ in range(3):
                try:
                    _link_or_create(tmp, self.lock)
                except FileExistsError:
                    owner = self._owner()
                    if owner is None and _age_s(self.lock) < 10:
                        owner = (-1, None)  # an unreadable lock just written by an older nicviz: not stale yet
                    if owner is not None and owner[0] != os.getpid() and (owner[0] == -1 or _alive(*owner)):
                        who = f"process {owner[0]}" if owner[0] != -1 else "another process"
                        raise NicvizError(f"{target} is in use by {who} (another sweep is writing it); "
                                          "wait for it to finish or choose another output") from None
                    self.lock.unlink(missing_ok=True)  # stale: its writer is gone
                    continue
                self.held = True
                return
        finally:
            tmp.unlink(missing_ok=True)
        raise NicvizError(f"{self.lock}: cannot take the lock")

    def release(self) -> None:
        if self.held:
            self.lock.unlink(missing_ok=True)
            self.held = False
            with FileLock._guard:
                FileLock._held.discard(self.key)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _link_or_create(src: Path, dst: Path) -> None:
    """``dst`` with ``src``'s content, created atomically: a hard link, or where the file
    system has none, an exclusive create (FileExistsError when ``dst`` exists)."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError:
        fd = os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write(src.read_text())


def _age_s(path: Path) -> float:
    import time

    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")


def _start_time(pid: int) -> float:
    """When process ``pid`` started (0.0 when unknown): with the id it names one process."""
    try:
        import psutil

        return round(psutil.Process(pid).create_time(), 2)
    except Exception:  # noqa: BLE001 - psutil missing or the process gone
        return 0.0


def _alive(pid: int, started: float | None = None) -> bool:
    """Whether the process that wrote a lock still runs (an id reused by a newer process does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if started:  # 0.0 or missing (an older lock): the id alone decides
        now = _start_time(pid)
        return not now or abs(now - started) < 1.0
    return True


def allowed_roots() -> list[Path]:
    """Folders a shared dashboard may read datasets from: the data root and the folders
    in ``$NICVIZ_ALLOWED_ROOTS`` (separated by ``os.pathsep``; for a single-user install)."""
    roots = [data_root(), *settings.folders("NICVIZ_ALLOWED_ROOTS")]
    return [r.resolve() for r in roots if r is not None and r.is_dir()]


def allowed_folder(text: str) -> Path:
    """The folder a dashboard user typed, if it lies inside an allowed root (a path
    relative to the data root, or an absolute one); else a one-line error that echoes
    only the user's own input and says nothing about what exists on the server."""
    from nicviz.errors import NicvizError

    roots = allowed_roots()
    refuse = NicvizError(f"{text!r} is not a dataset folder this dashboard may read (folders under the data root"
                         + (", or $NICVIZ_ALLOWED_ROOTS)" if roots else "; none is configured)"))
    if not text or "\x00" in text:
        raise refuse
    p = Path(text).expanduser()
    candidates = [p] if p.is_absolute() else [r / p for r in roots]
    for cand in candidates:
        try:
            real = cand.resolve()
        except (OSError, RuntimeError):
            continue
        for root in roots:
            try:
                rel = real.relative_to(root)
            except ValueError:
                continue
            if any(part.startswith(".") for part in rel.parts):
                raise refuse
            try:
                if real.is_dir():
                    return real
            except OSError:
                pass
    raise refuse
