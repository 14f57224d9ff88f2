"""Crash-safe file writes and SHA-256 digests shared by model files, checkpoints and the state store.

``atomic_write_bytes`` never leaves a half-written file under the target name: it writes a temporary
file in the same directory, flushes and fsyncs it, renames it over the target with ``os.replace``
(atomic on POSIX and Windows when both names are on one file system) and finally fsyncs the directory
so the rename itself survives a power cut. A crash at any point leaves either the old file or the
new one, never a mixture; a stray ``.<name>.<random>.tmp`` may remain and is safe to delete (``<name>``
cut to its first 200 bytes, so that a target name up to the 255-byte limit still has a legal temporary
name).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "sha256_file", "sha256_hex"]

_CHUNK = 1 << 20
_NEW_FILE_MODE = 0o644
_TMP_STEM_BYTES = 200
"""Most bytes of the target's name kept in the temporary file's name: ``.`` + 200 + ``.`` + mkstemp's
8 random characters + ``.tmp`` is 214, under the 255-byte ``NAME_MAX`` of common file systems."""


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

    The parent directory must exist (``FileNotFoundError`` naming it otherwise), and ``path`` must not
    be a directory (``IsADirectoryError``); a symlink is written through (its target replaced, the link
    kept), a symlink loop is an ``OSError`` with ``errno.ELOOP``. Steps: temporary file in the same
    directory, write, flush, ``fsync``, ``os.replace`` over ``path``, ``fsync`` of the directory. On
    any error the temporary file is removed and the previous content of ``path`` (if any) is
    untouched. A replaced file keeps
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
    try:
        target = Path(path).resolve()
    except RuntimeError as exc:  # Python 3.11 raises RuntimeError on a symlink loop; 3.13 OSError
        raise OSError(errno.ELOOP, f"cannot write through a symlink loop: {exc}", str(path)) from exc
    if target.is_dir():  # else os.replace fails only after the temporary file is written
        raise IsADirectoryError(errno.EISDIR, "cannot atomically replace a directory", str(target))
    if not target.parent.is_dir():  # else mkstemp's error names a temporary file the caller never saw
        raise FileNotFoundError(errno.ENOENT, "the target's directory does not exist", str(target.parent))
    mode = target.stat().st_mode & 0o777 if target.exists() else _NEW_FILE_MODE
    fd, tmp_name = tempfile.mkstemp(prefix=f".{_name_stem(target.name)}.", suffix=".tmp", dir=target.parent)
    try:
        # os.fdopen first, so that the ``with`` closes the descriptor whatever fails after it (an
        # os.fchmod refused by the file system used to leak the descriptor)
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):  # mkstemp creates 0600; keep the old file's mode or use 0644
                os.fchmod(fh.fileno(), mode)
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


def _name_stem(name: str) -> str:
    """``name`` cut to at most :data:`_TMP_STEM_BYTES` bytes in the file system's encoding, whole
    characters only (a 250-byte target name would otherwise give a temporary name over 255 bytes,
    refused with ``ENAMETOOLONG`` although the target's own name is legal)."""
    stem = name[:_TMP_STEM_BYTES]  # a character is at least one byte
    while len(os.fsencode(stem)) > _TMP_STEM_BYTES:
        stem = stem[:-1]
    return stem
