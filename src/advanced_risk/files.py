"""Crash-safe file writes and SHA-256 digests shared by model files, checkpoints and the state store.

``atomic_write_bytes`` never leaves a half-written file under the target name: it writes a temporary
file in the same directory, flushes and fsyncs it, renames it over the target with ``os.replace``
(atomic on POSIX and Windows when both names are on one file system) and finally fsyncs the directory
so the rename itself survives a power cut. A crash at any point leaves either the old file or the
new one, never a mixture; a stray ``.<name>.<random>.tmp`` may remain and is safe to delete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "sha256_file", "sha256_hex"]

_CHUNK = 1 << 20
_NEW_FILE_MODE = 0o644


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    """Hex SHA-256 digest of ``data`` (64 lowercase characters)."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 digest of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    """Persist a rename in ``directory``; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory; the rename has still happened
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically and durably; return the resolved path.

    The parent directory must exist. Steps: temporary file in the same directory, write, flush,
    ``fsync``, ``os.replace`` over ``path``, ``fsync`` of the directory. On any error the temporary
    file is removed and the previous content of ``path`` (if any) is untouched. A replaced file keeps
    its permission bits; a new one gets 0644.

    Parameters
    ----------
    path : destination file name.
    data : the complete new content.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = atomic_write_bytes(pathlib.Path(d) / "x.bin", b"abc")
    ...     p.read_bytes()
    b'abc'
    """
    target = Path(path).resolve()
    mode = target.stat().st_mode & 0o777 if target.exists() else _NEW_FILE_MODE
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp creates 0600; keep the old file's mode or use 0644
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(target.parent)
    return target
