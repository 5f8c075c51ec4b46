"""Atomic file writes, shared by everything that saves (checkpoints, tokenizers, plots).

Floor 2: it imports nothing from tinymm, so any floor may use it.

The bytes go to a temporary file in the target's folder, are flushed to disk, and the file is
renamed over the target: a reader never sees a half-written file, and a crash mid-write leaves
the previous version in place.
"""
from __future__ import annotations

import os
import tempfile


def _default_mode() -> int:
    # mkstemp creates files readable by their owner only; a saved file should get the usual
    # permissions (0666 minus the umask), as open() would give it.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path, write) -> None:
    """Create ``path`` atomically; ``write(f)`` writes the content into the binary file ``f``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, _default_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
