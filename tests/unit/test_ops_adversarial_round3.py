"""Adversarial tests, round 3: the latency histogram, atomic file writes, telemetry and its endpoint.

Oracles: ``np.percentile(..., method="inverted_cdf")`` on the raw samples for the histogram (within
its documented 1/2,048 relative error), the file system itself for :func:`atomic_write_bytes` (what
is on disk after a fault injected with ``monkeypatch``: tests run as root, so ``chmod`` would stop
nothing), and ``prometheus_client.parser.text_string_to_metric_families`` for the exposition text.
Every server binds 127.0.0.1, on a port the OS picks, and is closed by the test.
"""

from __future__ import annotations

import errno
import math
import os
import re
import socket
import threading
import time
import tracemalloc
import urllib.request
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from tests.monitoring.test_telemetry import decision

from advanced_risk.files import atomic_write_bytes
from advanced_risk.histogram import LatencyHistogram
from advanced_risk.monitoring.telemetry import Telemetry

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from advanced_risk.monitoring.prometheus import RiskMetricsCollector, serve_metrics  # noqa: E402

REL = 1.0 / 2048.0
"""The histogram's documented relative error for values between 62.5 ns and 71.6 min."""
PS = (0.0, 0.1, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0)

# ---------------------------------------------------------------------------------------- histogram


def _at_decimal_rank(ordered: np.ndarray, p: float) -> float:
    """The order statistic at rank ``ceil(p/100 * n)`` with ``p`` read as a decimal, exactly
    (``np.percentile(..., method="inverted_cdf")`` without its floating-point rank slips)."""
    rank = min(max(math.ceil(Fraction(str(p)) * ordered.size / 100), 1), ordered.size)
    return float(ordered[rank - 1])


def _filled(samples: np.ndarray) -> LatencyHistogram:
    hist = LatencyHistogram()
    for ms in samples.tolist():
        hist.record_ms(ms)
    return hist


@pytest.mark.parametrize(
    "kind",
    ["lognormal_wide", "uniform", "few_distinct", "two_points", "octave_edges", "single"],
)
def test_every_percentile_is_numpys_inverted_cdf_within_1_in_2048(kind: str) -> None:
    rng = np.random.default_rng(7)
    samples = {
        # 1e-4 ms (100 ns) to ~1e6 ms (17 min): nearly the whole range the buckets resolve
        "lognormal_wide": np.exp(rng.uniform(np.log(1e-4), np.log(1e6), 50_000)),
        "uniform": rng.uniform(0.05, 0.5, 20_000),
        "few_distinct": rng.choice([0.1, 0.25, 7.0, 300.0], 5_001),
        "two_points": np.array([1e-3] * 99 + [1e5]),
        # exact powers of two in microseconds: the first value of an octave, and just below one
        "octave_edges": np.array(
            [2.0**k / 1000.0 for k in range(-4, 32)]
            + [np.nextafter(2.0**k, 0) / 1000.0 for k in range(-3, 32)]
        ),
        "single": np.array([0.123]),
    }[kind]
    hist = _filled(samples)
    got = hist.percentiles_ms(PS)
    ordered = np.sort(samples)
    for p, g in zip(PS, got, strict=True):
        want = _at_decimal_rank(ordered, p)
        assert g == pytest.approx(want, rel=REL), f"p{p}: {g} vs {want}"
        numpy = np.percentile(samples, p, method="inverted_cdf")
        # numpy's own virtual index is a float product: 0.999 * 50,000 = 49950.00000000001, whose
        # ceil skips one order statistic; allow that one neighbour, never more
        at = int(np.searchsorted(ordered, want))
        assert numpy in ordered[at : at + 2]
    assert got[-1] == samples.max()  # the 100th percentile is the exact maximum
    assert hist.count == samples.size
    assert hist.sum_ms == pytest.approx(samples.sum(), rel=1e-12)


@pytest.mark.parametrize(("p", "n"), [(99.9, 1000), (99.9, 2000), (0.1, 1000), (99.99, 10_000)])
def test_a_percentile_that_is_a_whole_rank_in_decimal_is_not_pushed_to_the_next(p: float, n: int) -> None:
    """Bug (fixed in histogram.py): ``ceil(99.9 * 1000 / 100)`` is 1,000 in floating point
    (999.0000000000001), so with 999 calls at 0.1 ms and one at 500 ms the p99.9 read 500 ms, the
    maximum, where ``np.percentile(..., 99.9, method="inverted_cdf")`` and the definition give 0.1."""
    hist = LatencyHistogram()
    for _ in range(n - 1):
        hist.record_ms(0.1)
    hist.record_ms(500.0)
    # n - 1 of the n values (p % of them, exactly, in decimal) are 0.1: the definition's answer
    # (numpy's inverted_cdf agrees for 99.9 of 1,000 but has the same float slip at 99.99 of 10,000)
    assert math.ceil(Fraction(str(p)) * n / 100) <= n - 1
    assert hist.percentiles_ms((p,)) == [pytest.approx(0.1, rel=REL)]
    assert hist.percentiles_ms((100.0 * (n - 0.5) / n,)) == [500.0]  # a rank of n - 0.5: the max


def test_recording_infinity_counts_in_the_last_bucket() -> None:
    """Bug (fixed in histogram.py): ``record_ms(math.inf)`` raised ``OverflowError: cannot convert
    float infinity to integer`` (``int((inf - 0.5) * 2048)``), although values beyond the range are
    documented to count in the last bucket; so did a finite ms whose microseconds overflow (1e306)."""
    hist = LatencyHistogram()
    hist.record_ms(0.5)
    hist.record_ms(math.inf)
    hist.record_ms(1e306)
    assert hist.count == 3
    assert hist.max_ms == math.inf
    assert hist.sum_ms == math.inf
    p50, p100 = hist.percentiles_ms((50.0, 100.0))
    assert p50 == pytest.approx(2**32 / 1000.0, rel=1e-3)  # the last bucket, beyond 71.6 min
    assert p100 == math.inf
    assert hist.cumulative_counts((1e-3, 3600.0, math.inf)) == [1, 1, 3]


def test_a_bound_whose_microseconds_overflow_is_not_an_overflow_error() -> None:
    """Bug (fixed in histogram.py): ``cumulative_counts((1e303,))`` raised ``OverflowError`` (1e303 s
    is inf microseconds); it now counts like any bound past the range (all but the last bucket)."""
    hist = LatencyHistogram()
    for ms in (0.1, 5.0, 1e10):  # 1e10 ms is past 71.6 min: the last bucket
        hist.record_ms(ms)
    assert hist.cumulative_counts((1e303, 1e5, math.inf)) == [2, 2, 3]
    assert LatencyHistogram().cumulative_counts((1e303, 5e-324)) == [0, 0]


def test_zero_negative_nan_and_tiny_values_count_first_and_add_nothing_to_the_sum() -> None:
    hist = LatencyHistogram()
    for ms in (0.0, -3.0, math.nan, -math.inf, 1e-9):
        hist.record_ms(ms)
    assert hist.count == 5
    assert hist.sum_ms == pytest.approx(1e-9)  # only the positive one
    assert hist.max_ms == 1e-9  # NaN compares False: never the maximum
    # every value sits in the first bucket, and a percentile is capped at the exact maximum
    assert hist.percentiles_ms((0.0, 50.0, 100.0)) == [1e-9, 1e-9, 1e-9]
    assert hist.cumulative_counts((1e-9,)) == [0]  # the bound's own bucket counts as above it
    assert hist.cumulative_counts((1e-6,)) == [5]
    big = LatencyHistogram()
    for ms in (1e9, 1e9, 2e9):  # ~11.6 days: past the range, the last bucket, max still exact
        big.record_ms(ms)
    assert big.percentiles_ms((50.0, 100.0)) == [pytest.approx(2**32 * (1 - 1 / 4096) / 1000.0), 2e9]


def test_a_million_records_keep_fixed_memory_and_stay_under_5_us_each() -> None:
    hist = LatencyHistogram()
    samples = np.random.default_rng(3).lognormal(np.log(0.15), 1.2, 1_000_000)
    values = samples.tolist()
    record = hist.record_ms
    start = time.perf_counter()
    for ms in values:
        record(ms)
    per_record_us = (time.perf_counter() - start) / len(values) * 1e6
    assert per_record_us < 5.0, f"{per_record_us:.2f} us per record"  # ~1 us here, unloaded
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for ms in values[:200_000]:
            record(ms)
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert growth < 4096, f"{growth} bytes kept by 200,000 records"
    assert hist._view.nbytes == 36_864 * 8  # the counters never grow
    ordered = np.sort(np.concatenate([samples, samples[:200_000]]))
    want = [_at_decimal_rank(ordered, p) for p in (50.0, 99.0, 99.9)]
    assert hist.percentiles_ms((50.0, 99.0, 99.9)) == pytest.approx(want, rel=REL)


def test_percentiles_read_while_another_thread_records_are_monotone_and_counts_add_up() -> None:
    """The documented threading: one recorder, readers on other threads (no lock)."""
    hist = LatencyHistogram()
    n = 300_000
    done = threading.Event()

    def recorder() -> None:
        for i in range(n):
            hist.record_ms(0.05 + (i % 1000) * 0.01)
        done.set()

    thread = threading.Thread(target=recorder)
    thread.start()
    reads = 0
    try:
        while not done.is_set():
            got = hist.percentiles_ms((1.0, 50.0, 99.0))
            assert all(math.isnan(v) for v in got) or got == sorted(got)
            counts = hist.cumulative_counts((1e-4, 1e-3, 1e-2, math.inf))
            assert counts == sorted(counts)
            reads += 1
    finally:
        thread.join()
    assert reads > 0
    assert hist.count == n


# -------------------------------------------------------------------------------------------- files


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("name_bytes", [240, 250, 255])
def test_a_long_but_legal_target_name_is_written(tmp_path: Path, name_bytes: int) -> None:
    """Bug (fixed in files.py): the temporary name was ``.<name>.<8 random>.tmp``, 14 bytes longer
    than the target's, so a legal name of 242 to 255 bytes failed with ``ENAMETOOLONG``."""
    path = tmp_path / ("r" * name_bytes)
    atomic_write_bytes(path, b"old")
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []
    multibyte = tmp_path / ("é" * (name_bytes // 2))  # 2 bytes each in UTF-8: cut on a character
    atomic_write_bytes(multibyte, b"x")
    assert multibyte.read_bytes() == b"x"
    with pytest.raises(OSError, match="too long") as info:  # past the file system's limit: refused
        atomic_write_bytes(tmp_path / ("r" * 256), b"x")
    assert info.value.errno == errno.ENAMETOOLONG
    assert _leftovers(tmp_path) == []


def test_a_refused_fchmod_leaks_no_descriptor_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug (fixed in files.py): ``os.fchmod`` ran on the raw descriptor before ``os.fdopen`` took it
    over, so a file system refusing it (EPERM on some network mounts) leaked one descriptor a call."""
    path = tmp_path / "state.bin"
    atomic_write_bytes(path, b"old")

    def refuse(fd: int, mode: int) -> None:
        raise PermissionError(errno.EPERM, "fchmod refused")

    monkeypatch.setattr(os, "fchmod", refuse)
    open_before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(PermissionError, match="fchmod refused"):
            atomic_write_bytes(path, b"new")
    assert len(os.listdir("/proc/self/fd")) == open_before
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("where", ["fsync", "replace", "write"])
def test_a_full_disk_at_any_step_keeps_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = tmp_path / "state.bin"
    atomic_write_bytes(path, b"old content")

    def enospc(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "write":  # the buffered write fails when flushed, as a full disk does
        real_fdopen = os.fdopen

        class FullFile:
            def __init__(self, fh: object) -> None:
                self._fh = fh

            def __enter__(self) -> FullFile:
                return self

            def __exit__(self, *exc: object) -> None:
                self._fh.close()  # type: ignore[attr-defined]

            def fileno(self) -> int:
                return int(self._fh.fileno())  # type: ignore[attr-defined]

            def write(self, data: bytes) -> int:
                self._fh.write(data[: len(data) // 2])  # type: ignore[attr-defined]
                raise OSError(errno.ENOSPC, "No space left on device")

            def flush(self) -> None:  # pragma: no cover - never reached
                pass

        monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullFile(real_fdopen(fd, mode)))
    else:
        monkeypatch.setattr(os, where, enospc)
    with pytest.raises(OSError, match="No space left") as info:
        atomic_write_bytes(path, b"new content that does not fit")
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"old content"
    assert _leftovers(tmp_path) == []


def test_a_crash_between_write_and_rename_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt (or SystemExit) landing after the fsync, before the rename."""
    path = tmp_path / "state.bin"
    atomic_write_bytes(path, b"old")

    def interrupted(src: str, dst: object) -> None:
        assert Path(src).read_bytes() == b"new"  # written and synced, not yet renamed
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_a_directory_target_or_a_missing_directory_is_refused_naming_it(tmp_path: Path) -> None:
    """Found here (fixed in files.py): both errors named the temporary file (``.dir.x1y2.tmp ->
    dir``, ``missing/.f.x1y2.tmp``), a name the caller never gave; they name the target now."""
    directory = tmp_path / "dir"
    directory.mkdir()
    (directory / "inside").write_bytes(b"kept")
    with pytest.raises(IsADirectoryError) as info:
        atomic_write_bytes(directory, b"x")
    assert info.value.filename == str(directory)
    assert (directory / "inside").read_bytes() == b"kept"
    with pytest.raises(FileNotFoundError) as missing:
        atomic_write_bytes(tmp_path / "missing" / "f.bin", b"x")
    assert missing.value.filename == str(tmp_path / "missing")
    assert _leftovers(tmp_path) == []
    assert _leftovers(directory) == []


def test_a_symlink_is_written_through_and_a_symlink_loop_is_an_oserror(tmp_path: Path) -> None:
    """Bug (fixed in files.py): a symlink loop raised ``RuntimeError: Symlink loop`` (Python 3.11's
    ``Path.resolve``), which a caller handling ``OSError`` for file faults would not catch."""
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    os.chmod(real, 0o600)
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    assert atomic_write_bytes(link, b"new") == real
    assert link.is_symlink()
    assert real.read_bytes() == b"new"
    assert os.stat(real).st_mode & 0o777 == 0o600
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(OSError, match="symlink loop") as info:
        atomic_write_bytes(tmp_path / "a", b"x")
    assert info.value.errno == errno.ELOOP
    assert _leftovers(tmp_path) == []


def test_concurrent_writers_leave_one_writers_whole_content(tmp_path: Path) -> None:
    path = tmp_path / "shared.bin"
    payloads = [bytes([k]) * (256 * 1024 + k) for k in range(8)]  # distinct bytes and lengths
    atomic_write_bytes(path, payloads[0])
    stop = threading.Event()
    seen: list[bytes] = []
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for _ in range(15):
                atomic_write_bytes(path, payloads[k])
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        while not stop.is_set():
            seen.append(path.read_bytes())

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()
    assert errors == []
    valid = set(payloads)
    assert seen
    assert all(content in valid for content in seen)
    assert path.read_bytes() in valid
    assert _leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- telemetry, prometheus

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _scrape(telemetry: Telemetry, namespace: str = "advanced_risk") -> list[object]:
    registry = CollectorRegistry()
    registry.register(RiskMetricsCollector(telemetry.snapshot, namespace))
    return list(text_string_to_metric_families(generate_latest(registry).decode()))


def test_many_decisions_keep_memory_fixed_and_counters_exact() -> None:
    telemetry = Telemetry()
    shapes = [
        decision(equity=100.0, alerts=("correlation shock: 0.9",), drift={"policy": 0.1}),
        decision(equity=99.0, degraded=True),
        decision(equity=101.0, alerts=("an alert no classifier knows",)),
    ]
    for d in shapes:
        telemetry.record(d, 1e-4, False)
    n = 200_000  # 1e7 measured once: 920 bytes of growth
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            telemetry.record(shapes[i % 3], 1e-4 + (i % 97) * 1e-6, i % 11 == 0)
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert growth < 8192, f"{growth} bytes kept by {n:,} records"
    s = telemetry.snapshot()
    assert s.decisions == n + 3 == s.latency_count
    assert s.decisions_degraded == len(range(1, n, 3)) + 1
    assert s.deadline_misses == len(range(0, n, 11))
    assert len(s.alerts) == len(telemetry.snapshot().alerts) <= 20  # kinds, not alert texts


def test_the_scrape_parses_with_valid_names_escaped_labels_and_nan_gauges() -> None:
    telemetry = Telemetry(classify=lambda text: text)  # kinds straight from free text
    odd = 'quote " backslash \\ newline \n unicode ü'
    telemetry.record(
        decision(equity=None, var=math.nan, alerts=(odd, ""), drift={odd: math.nan, "": 1.5}), 1e-4, False
    )
    families = _scrape(telemetry, namespace="_round3")
    samples = {}
    for family in families:
        assert _METRIC_NAME.fullmatch(family.name)  # type: ignore[attr-defined]
        for sample in family.samples:  # type: ignore[attr-defined]
            assert _METRIC_NAME.fullmatch(sample.name)
            for label in sample.labels:
                assert _LABEL_NAME.fullmatch(label)
                assert not label.startswith("__")
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert math.isnan(samples[("_round3_var", ())])
    assert math.isnan(samples[("_round3_equity", ())])
    assert samples[("_round3_alerts_total", (("kind", odd),))] == 1.0  # round-trips through escaping
    assert samples[("_round3_alerts_total", (("kind", ""),))] == 1.0
    assert math.isnan(samples[("_round3_input_drift_score", (("model", odd),))])
    assert samples[("_round3_input_drift_score", (("model", ""),))] == 1.5


def test_a_drift_score_or_gauge_that_is_not_a_number_does_not_break_every_scrape() -> None:
    """Bug (fixed in telemetry.py): a decision carrying ``drift={"policy": None}`` (or a None gauge)
    made every scrape fail with ``TypeError`` -- the kill switch and journal health included -- until
    another decision replaced the score; the series is NaN now, the others unchanged."""
    telemetry = Telemetry()
    bad = decision(equity=100.0, drift={"policy": None, "risk_agents": "0.25"})  # type: ignore[dict-item]
    object.__setattr__(bad, "leverage", None)  # a hand-built decision (the engine never does this)
    telemetry.record(bad, 1e-4, False)
    values = {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in _scrape(telemetry)
        for sample in family.samples  # type: ignore[attr-defined]
    }
    assert math.isnan(values[("advanced_risk_input_drift_score", ("policy",))])
    assert values[("advanced_risk_input_drift_score", ("risk_agents",))] == 0.25
    assert math.isnan(values[("advanced_risk_leverage", ())])
    assert values[("advanced_risk_equity", ())] == 100.0
    assert values[("advanced_risk_decisions_total", ("ok",))] == 1.0


def test_the_endpoint_listens_on_loopback_only_by_default() -> None:
    with serve_metrics(Telemetry().snapshot, 0) as server:
        assert server.addr == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            assert response.status == 200
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(2)
        try:  # another loopback address reaches a 0.0.0.0 listener, not a 127.0.0.1 one
            with pytest.raises(ConnectionRefusedError):
                probe.connect(("127.0.0.2", server.port))
        finally:
            probe.close()


def test_a_port_held_on_every_interface_is_a_clear_error_and_the_registry_is_reusable() -> None:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("0.0.0.0", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    registry = CollectorRegistry()
    try:
        with pytest.raises(OSError, match=f"127.0.0.1:{port}") as info:
            serve_metrics(Telemetry().snapshot, port, registry=registry)
        assert info.value.errno == errno.EADDRINUSE
    finally:
        blocker.close()
    with serve_metrics(Telemetry().snapshot, 0, registry=registry) as server:  # nothing left behind
        assert server.port != 0


def test_http_scrapes_while_decisions_are_recorded_are_one_instant_or_nearly() -> None:
    """A recorder doing ~20-40 us of work per decision, as the manager's numpy work does. The
    snapshot rereads while a record lands under it, up to 50 times, without a lock (a scrape never
    holds up a decision); past that the last read is used, so on a loaded machine a few scrapes are
    torn: measured 1 in 30 in a CI run (88 decisions of 22,408 apart). A recorder calling ``record``
    in a tight loop is the documented limit (most scrapes torn). Prometheus itself promises no more
    across metrics; each histogram is always whole (its buckets and count come from one read)."""
    telemetry = Telemetry()
    shapes = [decision(equity=100.0), decision(equity=90.0, degraded=True)]
    stop = threading.Event()
    work = np.ones(64)

    def recorder() -> None:
        i = 0
        while not stop.is_set():
            for _ in range(20):  # the decision's own work between two records
                work.sum()
            telemetry.record(shapes[i % 2], 1e-5 * (1 + i % 500), i % 3 == 0)
            i += 1

    thread = threading.Thread(target=recorder)
    thread.start()
    try:
        with serve_metrics(telemetry.snapshot, 0) as server:
            url = f"http://127.0.0.1:{server.port}/metrics"
            torn = 0
            for _ in range(30):
                with urllib.request.urlopen(url, timeout=5) as response:
                    text = response.read().decode()
                values: dict[tuple[str, str], float] = {}
                buckets: list[float] = []
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        if sample.name == "advanced_risk_decision_latency_seconds_bucket":
                            buckets.append(sample.value)
                        values[(sample.name, ",".join(sample.labels.values()))] = sample.value
                total = (
                    values[("advanced_risk_decisions_total", "ok")]
                    + values[("advanced_risk_decisions_total", "degraded")]
                )
                count = values[("advanced_risk_decision_latency_seconds_count", "")]
                assert buckets == sorted(buckets)
                assert buckets[-1] == count
                torn += count != total
                assert abs(count - total) <= max(0.01 * total, 100), (count, total)
            assert torn <= 6, f"{torn} of 30 scrapes torn"
    finally:
        stop.set()
        thread.join()
