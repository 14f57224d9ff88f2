"""The shipped models, re-exported as safetensors + JSON, decide exactly as the torch-pickle files did.

``data/shipped_models_components.json`` holds the SHA-256 of every bar's output of
``replay_shipped_models.py components --bars 300`` (the policy's weights and uncertainty, the risk
agents' gated advice: the models alone, independent of the engine's rules), recorded with the
format-1 files (``torch.save`` payloads) and the torch inference path before the conversion. Here the
format-2 files, read and run without torch, must reproduce every one.

Bit-for-bit floating point depends on the kernels the CPU gets: on a CPU with AVX-512, NumPy's
AVX-512 loops and OpenBLAS's SkylakeX GEMM round differently from the AVX2 ones the digests were
recorded with (the first bar differs in its last bits). The replay therefore runs with the AVX2
kernels pinned (``KERNEL_ENV``), which every x86-64 CI machine of this project has.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
REPLAY = HERE / "replay_shipped_models.py"
FIXTURE = HERE / "data" / "shipped_models_components.json"
KERNEL_ENV = {"OPENBLAS_CORETYPE": "Haswell", "NPY_DISABLE_CPU_FEATURES": "X86_V4,AVX512_ICL,AVX512_SPR"}
"""The AVX2 kernels of the recording machine (NumPy warns, harmlessly, of features a CPU lacks)."""


def _kernel_env() -> dict[str, str]:
    if platform.machine() not in ("x86_64", "AMD64"):
        return dict(os.environ)
    return os.environ | KERNEL_ENV


def test_reexported_models_reproduce_the_format_1_outputs_bar_for_bar_without_torch() -> None:
    expected = json.loads(FIXTURE.read_text())
    proc = subprocess.run(
        [sys.executable, str(REPLAY), "components", "--bars", str(expected["bars"]), "--no-training-stack"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_kernel_env(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    digests = [hashlib.sha256(row.encode()).hexdigest() for row in proc.stdout.splitlines()]
    assert len(digests) == expected["bars"]
    first_difference = next(
        (t for t, (a, b) in enumerate(zip(digests, expected["sha256"], strict=True)) if a != b), None
    )
    assert first_difference is None, f"outputs differ from bar {first_difference}"
