"""The on-disk format of policies, risk agents and training checkpoints: verified, then decoded.

Layout (one file, written atomically by :func:`advanced_risk.files.atomic_write_bytes`)::

    offset  size  content
    0       8     magic  b"ARMODEL\\n"
    8       64    SHA-256 (lowercase hex, ASCII) of every byte from offset 72 to the end
    72      8     H = length of the header, unsigned 64-bit little-endian
    80      H     header: UTF-8 JSON {"format_version": 2, "kind", "payload_bytes", "created_at",
                  "advanced_risk_version", "numpy_version", "safetensors_version",
                  ["torch_version",] "metadata": {...}}
    80+H    ...   payload: a safetensors blob of named arrays (weights, normaliser moments)

Every value that is not an array (dims, configs, settings, counters, RNG states) lives in the JSON
header's ``metadata``; the payload holds arrays only, in safetensors' layout (its own small JSON
index of dtype, shape and offsets, then the raw little-endian bytes). Nothing is pickled, so reading
needs NumPy and safetensors only, never torch; ``torch_version`` is recorded when the writer had
torch loaded (a trained model says what trained it).

Reading checks, in order: the file exists, the magic, the length (truncation), the SHA-256 over
header and payload (corruption, flipped bytes), the format version and kind; only then is the payload
decoded. Every failure is a :class:`~advanced_risk.errors.ModelLoadError` whose message says what is
wrong. The header is plain JSON, so ``head -c 4096 model.armodel`` shows dims, config and versions.
Format version 1 (a ``torch.save`` payload) is not read here: ``examples/convert_model_files.py``
converts such files (it needs torch).
"""

from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy
from numpy.typing import NDArray

from advanced_risk.errors import ModelLoadError
from advanced_risk.files import atomic_write_bytes, sha256_hex

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "Arrays",
    "read_model_file",
    "read_model_header",
    "verified_parts",
    "write_model_file",
]

MAGIC = b"ARMODEL\n"
FORMAT_VERSION = 2
_DIGEST_END = 8 + 64
_HEADER_START = _DIGEST_END + 8

Arrays = dict[str, NDArray[Any]]
"""A model file's payload: array name -> array."""


def _versions() -> dict[str, str]:
    """The library versions a file records (torch's only when the writer has torch loaded)."""
    # the package is imported before any of its modules: read its version without importing the
    # package root from here (the root imports the manager, which loads model files)
    versions = {
        "advanced_risk_version": str(sys.modules["advanced_risk"].__version__),
        "numpy_version": np.__version__,
        "safetensors_version": safetensors.__version__,
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        versions["torch_version"] = str(torch.__version__)
    return versions


def write_model_file(
    path: str | os.PathLike[str], arrays: Mapping[str, NDArray[Any]], metadata: Mapping[str, Any], kind: str
) -> str:
    """Write ``arrays`` (the payload) with ``metadata`` (JSON values) to ``path``; return the SHA-256.

    Parameters
    ----------
    path : the file, replaced atomically.
    arrays : name -> NumPy array (any shape, numeric or bool dtype); torch tensors must be
        converted by the caller (``tensor.detach().cpu().numpy()``).
    metadata : JSON-serialisable values (finite floats only), stored in the header.
    kind : what the file holds (``"ppo_agent"``, ``"risk_agents"``, ``"training_checkpoint"``);
        readers ask for it.
    """
    body = safetensors.numpy.save({name: np.require(a, requirements="C") for name, a in arrays.items()})
    header = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "payload_bytes": len(body),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **_versions(),
        "metadata": dict(metadata),
    }
    header_bytes = json.dumps(header, sort_keys=True, allow_nan=False).encode("utf-8")
    tail = struct.pack("<Q", len(header_bytes)) + header_bytes + body
    digest = sha256_hex(tail)
    atomic_write_bytes(path, MAGIC + digest.encode("ascii") + tail)
    return digest


def verified_parts(path: Path) -> tuple[dict[str, Any], bytes]:
    """``(header, payload bytes)`` of any format version, after the checks that do not depend on it.

    Checks the file, magic, length and SHA-256 (module docstring), not the version or kind; a
    converter of older files reads through here. Raises ``ModelLoadError``.
    """
    if path.is_dir():
        raise ModelLoadError(f"model file {path} is a directory, not a model file")
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read model file {path}: {exc}") from exc
    if data[: len(MAGIC)] != MAGIC:
        raise ModelLoadError(f"{path} is not an advanced_risk model file (bad magic {data[:8]!r})")
    if len(data) < _HEADER_START:
        raise ModelLoadError(f"model file {path} is truncated: {len(data)} bytes, header incomplete")
    (header_len,) = struct.unpack("<Q", data[_DIGEST_END:_HEADER_START])
    stored = data[len(MAGIC) : _DIGEST_END].decode("ascii", errors="replace")
    computed = sha256_hex(data[_DIGEST_END:])
    if stored != computed:
        expected = _expected_size(data, header_len)
        if expected is not None and len(data) < expected:
            raise ModelLoadError(
                f"model file {path} is truncated: {len(data)} bytes, needs at least {expected}"
            )
        raise ModelLoadError(
            f"model file {path} is corrupt: SHA-256 mismatch (stored {stored[:16]}..., "
            f"computed {computed[:16]}...)"
        )
    try:
        header = json.loads(data[_HEADER_START : _HEADER_START + header_len])
    except ValueError as exc:  # a verified file written by something else
        raise ModelLoadError(f"model file {path}: header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise ModelLoadError(f"model file {path}: header is a {type(header).__name__}, expected an object")
    return header, data[_HEADER_START + header_len :]


def _read_verified(path: Path, kind: str | None) -> tuple[dict[str, Any], bytes]:
    """Return (header, payload bytes) after every integrity check; raise ModelLoadError otherwise."""
    header, body = verified_parts(path)
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        hint = " (torch pickle: convert it with examples/convert_model_files.py)" if version == 1 else ""
        raise ModelLoadError(
            f"model file {path} has format_version {version!r}; this advanced_risk reads "
            f"{FORMAT_VERSION}{hint}"
        )
    if kind is not None and header.get("kind") != kind:
        raise ModelLoadError(f"model file {path} holds a {header.get('kind')!r}, expected a {kind!r}")
    return header, body


def _expected_size(data: bytes, header_len: int) -> int | None:
    """Best-effort full size from an unverified header (to tell truncation from corruption)."""
    try:
        raw = data[_HEADER_START : _HEADER_START + header_len]
        return _HEADER_START + header_len + int(json.loads(raw)["payload_bytes"])
    except (ValueError, KeyError, TypeError):
        return _HEADER_START + header_len if len(data) < _HEADER_START + header_len else None


def read_model_header(path: str | os.PathLike[str], kind: str | None = None) -> dict[str, Any]:
    """The verified JSON header of a model file (dims, config, versions) without decoding arrays."""
    return _read_verified(Path(path), kind)[0]


def read_model_file(path: str | os.PathLike[str], kind: str | None = None) -> tuple[dict[str, Any], Arrays]:
    """Verify and decode a model file: ``(header, arrays)`` (writable NumPy arrays, by name).

    Raises
    ------
    ModelLoadError
        Missing, truncated or corrupt file, another format version or kind, or a payload that is
        not a valid safetensors blob.
    """
    header, body = _read_verified(Path(path), kind)
    try:
        arrays = safetensors.numpy.load(body)
    except Exception as exc:  # safetensors raises its own SafetensorError (and others) on bad bytes
        raise ModelLoadError(f"model file {path}: payload cannot be loaded: {exc}") from exc
    return header, arrays
