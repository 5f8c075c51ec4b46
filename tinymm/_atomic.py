"""Atomic file writes, shared by everything that saves (checkpoints, tokenizers, plots).

Floor 2: it imports nothing from tinymm, so any floor may use it.

The bytes go to a temporary file in the target's folder, are flushed to disk, and the file is
renamed over the target: a reader never sees a half-written file, and a crash mid-write leaves
the previous version in place.

What the target already is decides the rest, as ``open(path, "wb")`` would:

- a symlink: the file it points to is written (the link stays a link);
- a read-only file (no write bit set): ``PermissionError``, and the file is left untouched;
- an existing file: the new one keeps its permission bits;
- a folder: ``IsADirectoryError``.

A temporary file is named ``.<name>.<pid>.<random>.tmp``. A save killed half-way (SIGKILL,
power loss) cannot remove its own, so every save first removes the temporary files of the same
target whose process no longer runs.
"""
from __future__ import annotations

import os
import stat
import tempfile


def _default_mode() -> int:
    # mkstemp creates files readable by their owner only; a saved file should get the usual
    # permissions (0666 minus the umask), as open() would give it.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process (or a pid we cannot ask about): leave its file alone
    return True


def _remove_stale_temps(folder: str, name: str) -> None:
    """Remove ``.<name>.<pid>.*.tmp`` files left by saves whose process has died."""
    prefix = f".{name}."
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        pid_text = entry[len(prefix):].split(".", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue
        try:
            os.unlink(os.path.join(folder, entry))
        except OSError:
            pass  # another process cleaned it first, or we may not: harmless either way


def resolve_target(path) -> str:
    """The file a write to ``path`` lands in: symlinks followed; raise if it cannot be written."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"expected a file path (str or os.PathLike), got {type(path).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise FileNotFoundError("expected a file path, got an empty string")
    path = os.path.realpath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a folder, expected a file path")
    if os.path.exists(path):
        mode = os.stat(path).st_mode
        # Checked on the mode bits, not only os.access: root may write anything, but a file
        # marked read-only is still not meant to be replaced.
        if not (mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) or not os.access(path, os.W_OK):
            raise PermissionError(f"{path} is read-only; refusing to overwrite it")
    folder = os.path.dirname(path)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"cannot write {path}: {folder} is a file, not a folder")
    return path


def atomic_write(path, write) -> None:
    """Create or replace ``path`` atomically; ``write(f)`` writes the content into the binary
    file ``f``. See the module docstring for symlinks, read-only files and leftovers."""
    path = resolve_target(path)
    folder, name = os.path.split(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(f"cannot write {path}: a part of {folder} is a file, not a folder") from None
    _remove_stale_temps(folder, name)
    mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else _default_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
