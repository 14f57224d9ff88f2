"""The on-disk format of policies and training checkpoints: verified before anything is unpickled.

Layout (one file, written atomically by :func:`advanced_risk.files.atomic_write_bytes`)::

    offset  size  content
    0       8     magic  b"ARMODEL\\n"
    8       64    SHA-256 (lowercase hex, ASCII) of every byte from offset 72 to the end
    72      8     H = length of the header, unsigned 64-bit little-endian
    80      H     header: UTF-8 JSON {"format_version", "kind", "payload_bytes", "created_at",
                  "advanced_risk_version", "torch_version", "metadata": {...}}
    80+H    ...   payload: ``torch.save`` of a dict holding only tensors and plain Python values

Reading checks, in order: the file exists, the magic, the length (truncation), the SHA-256 over
header and payload (corruption, flipped bytes), the format version and kind; only then is the payload
deserialised, with ``torch.load(weights_only=True)``, which cannot execute code. Every failure is a
:class:`~advanced_risk.errors.ModelLoadError` whose message says what is wrong. The header is plain
JSON, so ``head -c 4096 model.pt`` shows dims, config and versions without torch.
"""

from __future__ import annotations

import io
import json
import os
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

import advanced_risk
from advanced_risk.errors import ModelLoadError
from advanced_risk.files import atomic_write_bytes, sha256_hex

__all__ = ["FORMAT_VERSION", "MAGIC", "read_model_file", "read_model_header", "write_model_file"]

MAGIC = b"ARMODEL\n"
FORMAT_VERSION = 1
_DIGEST_END = 8 + 64
_HEADER_START = _DIGEST_END + 8


def write_model_file(
    path: str | os.PathLike[str], payload: Mapping[str, Any], metadata: Mapping[str, Any], kind: str
) -> str:
    """Serialise ``payload`` with ``metadata`` (JSON-serialisable) to ``path``; return the SHA-256."""
    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)
    body = buffer.getvalue()
    header = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "payload_bytes": len(body),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "advanced_risk_version": advanced_risk.__version__,
        "torch_version": torch.__version__,
        "metadata": dict(metadata),
    }
    header_bytes = json.dumps(header, sort_keys=True, allow_nan=False).encode("utf-8")
    tail = struct.pack("<Q", len(header_bytes)) + header_bytes + body
    digest = sha256_hex(tail)
    atomic_write_bytes(path, MAGIC + digest.encode("ascii") + tail)
    return digest


def _read_verified(path: Path, kind: str | None) -> tuple[dict[str, Any], bytes]:
    """Return (header, payload bytes) after every integrity check; raise ModelLoadError otherwise."""
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
    header: dict[str, Any] = json.loads(data[_HEADER_START : _HEADER_START + header_len])
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelLoadError(
            f"model file {path} has format_version {version!r}; this advanced_risk reads {FORMAT_VERSION}"
        )
    if kind is not None and header.get("kind") != kind:
        raise ModelLoadError(f"model file {path} holds a {header.get('kind')!r}, expected a {kind!r}")
    return header, data[_HEADER_START + header_len :]


def _expected_size(data: bytes, header_len: int) -> int | None:
    """Best-effort full size from an unverified header (to tell truncation from corruption)."""
    try:
        raw = data[_HEADER_START : _HEADER_START + header_len]
        return _HEADER_START + header_len + int(json.loads(raw)["payload_bytes"])
    except (ValueError, KeyError, TypeError):
        return _HEADER_START + header_len if len(data) < _HEADER_START + header_len else None


def read_model_header(path: str | os.PathLike[str], kind: str | None = None) -> dict[str, Any]:
    """The verified JSON header of a model file (dims, config, versions) without unpickling."""
    return _read_verified(Path(path), kind)[0]


def read_model_file(
    path: str | os.PathLike[str], kind: str | None = None, map_location: str | torch.device = "cpu"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify and load a model file: ``(header, payload)``; payload via ``weights_only=True``."""
    header, body = _read_verified(Path(path), kind)
    try:
        payload = torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    except Exception as exc:  # any unpickling failure is a bad file, whatever torch raises
        raise ModelLoadError(f"model file {path}: payload cannot be loaded: {exc}") from exc
    if not isinstance(payload, dict):
        raise ModelLoadError(f"model file {path}: payload is a {type(payload).__name__}, expected a dict")
    return header, payload
