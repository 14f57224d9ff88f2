"""Adversarial tests of the GJR-GARCH fit, its worker process and the engine's refits.

Numbers are checked against ``arch`` (the reference implementation the fit wraps) on simulated
GJR-GARCH paths with known parameters, and the variance filter against a plain-Python recursion.
The worker is run against misbehaving children (crash, hang, garbage, killed) started through its
``command`` seam; each must give the caller a ``RuntimeError`` quickly and leave no process behind.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import warnings
from concurrent.futures import Future

import numpy as np
import pytest

from advanced_risk.config import TrackerConfig
from advanced_risk.engine.refits import GarchRefits
from advanced_risk.errors import InvalidInputError
from advanced_risk.risk.garch import GarchFilter, GarchParams, check_garch_params, fit_gjr_garch
from advanced_risk.risk.garch_worker import GarchWorker
from advanced_risk.risk.tracker import RiskTracker

TRUE = GarchParams(mu=2e-4, omega=2e-6, alpha=0.03, gamma=0.10, beta=0.88, nu=6.0)  # persistence 0.96


def _simulate(p: GarchParams, n: int, seed: int, dist: str = "t") -> np.ndarray:
    """A GJR-GARCH(1,1) path: r_t = mu + sqrt(s2_t) z_t, z unit-variance t(nu) or normal."""
    rng = np.random.default_rng(seed)
    if dist == "t":
        assert p.nu is not None
        z = rng.standard_t(p.nu, n) / math.sqrt(p.nu / (p.nu - 2.0))
    else:
        z = rng.standard_normal(n)
    s2 = p.omega / (1.0 - p.persistence)
    out = np.empty(n)
    for t in range(n):
        e = math.sqrt(s2) * z[t]
        out[t] = p.mu + e
        s2 = p.omega + (p.alpha + p.gamma * (e < 0.0)) * e * e + p.beta * s2
    return out


def _recursion(r: np.ndarray, p: GarchParams, s0: float) -> list[float]:
    """sigma2_(t+1) = omega + (alpha + gamma * I[e_t < 0]) e_t^2 + beta sigma2_t, e_t = r_t - mu."""
    out = [s0]
    for x in r:
        e = float(x) - p.mu
        out.append(p.omega + (p.alpha + p.gamma * (e < 0.0)) * e * e + p.beta * out[-1])
    return out


def _arch_fit(r: np.ndarray, scale: float, dist: str):  # type: ignore[no-untyped-def]
    from arch import arch_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return arch_model(
            scale * r, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist=dist, rescale=False
        ).fit(disp="off", show_warning=False)


# -- numbers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dist", ["t", "normal"])
def test_fit_matches_arch_and_recovers_the_simulated_parameters(dist: str) -> None:
    r = _simulate(TRUE, 4000, seed=7, dist=dist)
    p = fit_gjr_garch(r, dist=dist)
    res = _arch_fit(r, 100.0, dist)  # std ~ 1 %: our fit scales by 100 too, so arch sees the same data
    # the same optimiser on the same numbers: agreement to rounding; 1e-6 leaves room for BLAS order
    assert p.mu == pytest.approx(res.params["mu"] / 100.0, rel=1e-6)
    assert p.omega == pytest.approx(res.params["omega"] / 1e4, rel=1e-6)
    for ours, name in ((p.alpha, "alpha[1]"), (p.gamma, "gamma[1]"), (p.beta, "beta[1]")):
        assert ours == pytest.approx(res.params[name], rel=1e-6, abs=1e-9)
    # against the truth: 4000 bars give standard errors ~0.01-0.02 on alpha, gamma and beta; 0.06 is
    # ~4 standard errors, so a sign or unit error fails while sampling noise passes
    assert abs(p.alpha - TRUE.alpha) < 0.06
    assert abs(p.gamma - TRUE.gamma) < 0.06
    assert abs(p.beta - TRUE.beta) < 0.06
    # conditional variance and the one-step forecast equal arch's (same start: arch's backcast)
    sigma2 = (res.conditional_volatility / 100.0) ** 2
    path = p.variance(r, init=float(sigma2[0]))
    np.testing.assert_allclose(path[:-1], sigma2, rtol=1e-6)
    forecast = res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0] / 1e4
    assert path[-1] == pytest.approx(forecast, rel=1e-6)


def test_variance_filter_equals_a_plain_python_recursion() -> None:
    r = _simulate(TRUE, 2000, seed=3)
    r[100] = -0.5  # a crash bar: the leverage term in play
    s0 = 1.7e-4
    got = TRUE.variance(r, init=s0)
    # the same arithmetic in another order: rtol 1e-12 is ~1e4 ulps, far below any formula error
    np.testing.assert_allclose(got, _recursion(r, TRUE, s0), rtol=1e-12)
    default = TRUE.variance(r)  # init defaults to mean((r - mu)^2)
    assert default[0] == pytest.approx(float(np.mean((r - TRUE.mu) ** 2)), rel=1e-12)


def test_variance_of_a_million_points_is_fast_and_exact_at_the_end() -> None:
    r = _simulate(TRUE, 10_000, seed=5)
    big = np.tile(r, 100)
    TRUE.variance(big[:10])  # compile the kernel outside the timing
    t0 = time.perf_counter()
    v = TRUE.variance(big, init=1e-4)
    assert time.perf_counter() - t0 < 1.0  # numba: ~10 ms; a Python loop would take ~1 s
    assert v.shape == (1_000_001,)
    assert np.isfinite(v).all()
    assert (v > 0).all()
    np.testing.assert_allclose(v[-1001:], _recursion(big[-1000:], TRUE, float(v[-1001]))[:], rtol=1e-12)


@pytest.mark.slow
def test_fit_of_a_million_points() -> None:
    r = _simulate(TRUE, 1_000_000, seed=11)
    t0 = time.perf_counter()
    p = fit_gjr_garch(r)
    elapsed = time.perf_counter() - t0
    assert elapsed < 120.0
    assert abs(p.beta - TRUE.beta) < 0.01
    assert abs(p.gamma - TRUE.gamma) < 0.01


# -- inputs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("zero_mean", [False, True])
def test_all_zero_returns_raise_instead_of_arch_starting_values(zero_mean: bool) -> None:
    # arch stopped at its starting values (omega = 0, alpha = gamma = 0.01, beta = 0.485, flag 4)
    # and they came back as a fit: a zero variance path for FHS to divide by
    with pytest.raises(InvalidInputError, match="returns have no variation"):
        fit_gjr_garch(np.zeros(300), zero_mean=zero_mean)


@pytest.mark.parametrize("dist", ["t", "normal"])
def test_a_constant_series_raises_not_a_zero_omega(dist: str) -> None:
    with pytest.raises(InvalidInputError, match=r"returns|omega"):
        fit_gjr_garch(np.full(300, 0.001), dist=dist)


def test_one_huge_outlier_gives_a_usable_model() -> None:
    r = _simulate(TRUE, 1500, seed=2)
    r[700] = -1000.0 * float(np.std(r))  # a 1000-sigma print
    p = check_garch_params(fit_gjr_garch(r))
    v = p.variance(r)
    assert np.isfinite(v).all()
    assert (v > 0).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_returns_raise_naming_the_field(bad: float) -> None:
    r = _simulate(TRUE, 300, seed=1)
    r[10] = bad
    with pytest.raises(InvalidInputError, match="returns must be finite"):
        fit_gjr_garch(r)
    with pytest.raises(InvalidInputError, match="returns must be finite"):
        TRUE.variance(r)


def test_short_series_raises() -> None:
    with pytest.raises(InvalidInputError, match="at least 100"):
        fit_gjr_garch(np.full(99, 0.01))


@pytest.mark.parametrize("init", [-1e-4, math.nan, math.inf])
def test_variance_refuses_a_negative_or_non_finite_start(init: float) -> None:
    # a negative start made every forecast negative (-1, -0.9, -0.81, ...)
    with pytest.raises(InvalidInputError, match="init"):
        TRUE.variance([0.01, 0.02], init=init)


@pytest.mark.parametrize(
    ("field", "value"),
    [("omega", 0.0), ("omega", -1e-6), ("alpha", -0.1), ("beta", -0.1), ("mu", math.nan), ("nu", 1.5)],
)
def test_check_garch_params_names_the_bad_field(field: str, value: float) -> None:
    import dataclasses

    with pytest.raises(InvalidInputError, match=field):
        check_garch_params(dataclasses.replace(TRUE, **{field: value}))
    with pytest.raises(InvalidInputError, match="persistence"):
        check_garch_params(GarchParams(0.0, 1e-6, 0.5, 0.2, 0.5))
    with pytest.raises(InvalidInputError, match="GarchParams"):
        check_garch_params({"mu": 0.0})


def test_a_non_converged_fit_is_returned_only_when_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fit flagged not converged returns its iterate if usable; an unusable one raises."""
    import arch.univariate.base as base

    real_fit = base.ARCHModel.fit
    r = _simulate(TRUE, 500, seed=4)

    def capped(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["options"] = {"maxiter": 2}  # SLSQP stops early: convergence_flag 9
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(base.ARCHModel, "fit", capped)
    try:
        p = fit_gjr_garch(r)
    except InvalidInputError as exc:
        message = str(exc)  # an unusable iterate: refused, naming the flag
        assert "convergence flag" in message
        return
    check_garch_params(p)


def test_filter_keeps_its_model_and_alignment_when_a_refit_fails() -> None:
    f = GarchFilter(refit_every=50, min_obs=100, max_history=100)
    for x in _simulate(TRUE, 100, seed=8):
        f.update(float(x))
    for _ in range(60):  # the refit at bar 150 still sees 50 random returns among its 100
        f.update(0.0)
    kept = f.params
    assert kept is not None
    for _ in range(90):  # the refits at bars 200 and 250 see 100 zeros: no variation, they fail
        v = f.update(0.0)
        assert math.isfinite(v)
        assert v > 0.0
    assert f.params is kept  # the failing refits kept the previous model
    assert len(f._variance) == f.n_obs  # each kept return has its forecast
    flat = GarchFilter(min_obs=100)
    assert all(math.isnan(flat.update(0.0)) for _ in range(120))  # no fit possible: NaN, no raise


# -- the worker ------------------------------------------------------------------------------------
_GOOD = '{"mu": 0.0, "omega": 1e-06, "alpha": 0.05, "gamma": 0.1, "beta": 0.85, "nu": 6.0}'


def _child(body: str) -> list[str]:
    """A fake worker child: for each request line, run ``body`` (``line`` is bound)."""
    script = f"import sys, time, os\nfor line in sys.stdin:\n    {body}\n    sys.stdout.flush()\n"
    return [sys.executable, "-c", script]


def _reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # already waited for: no zombie
    return False


def _returns() -> np.ndarray:
    return np.random.default_rng(0).normal(0.0, 0.01, 150)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("os._exit(3)", "exited"),  # crashes mid-fit
        ("sys.stdout.write('hello\\n')", "garbage"),
        ("sys.stdout.write('[1, 2]\\n')", "garbage"),
        ("sys.stdout.write('{\"mu\": 0}\\n')", "garbage"),  # fields missing
        ('sys.stdout.write(\'{"mu": NaN, "omega": 1e-6, "alpha": 0, "gamma": 0, "beta": 0.9}\\n\')', "mu"),
        ('sys.stdout.write(\'{"mu": 0, "omega": 0, "alpha": 0.1, "gamma": 0, "beta": 0.5}\\n\')', "omega"),
        ('sys.stdout.write(\'{"mu": 0.0, "om\'); sys.stdout.flush(); os._exit(1)', "exited"),  # cut short
    ],
)
def test_a_misbehaving_child_raises_runtime_error_and_is_reaped(body: str, match: str) -> None:
    worker = GarchWorker(timeout_s=5.0, command=_child(body))
    try:
        with pytest.raises(RuntimeError, match=match):
            worker.fit(_returns())
        assert worker._proc is None
    finally:
        worker.close()


def test_a_hung_child_is_killed_at_the_timeout_and_the_next_fit_starts_afresh() -> None:
    worker = GarchWorker(timeout_s=0.5, command=_child("time.sleep(60)"))
    try:
        t0 = time.perf_counter()
        with pytest.raises(RuntimeError, match=r"timeout_s=0\.5"):
            worker.fit(_returns())
        assert time.perf_counter() - t0 < 5.0
        assert worker._proc is None
        worker._command = _child(f"sys.stdout.write({_GOOD!r} + '\\n')")
        assert worker.fit(_returns()).beta == 0.85
    finally:
        worker.close()


def test_a_child_killed_between_fits_is_replaced() -> None:
    worker = GarchWorker(timeout_s=5.0, command=_child(f"sys.stdout.write({_GOOD!r} + '\\n')"))
    try:
        worker.fit(_returns())
        proc = worker._proc
        assert proc is not None
        proc.kill()
        proc.wait()
        assert worker.fit(_returns()).omega == 1e-6  # a fresh child
        assert worker._proc is not proc
    finally:
        worker.close()


def test_close_during_a_fit_returns_at_once_and_the_fit_raises() -> None:
    worker = GarchWorker(timeout_s=60.0, command=_child("time.sleep(60)"))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.fit(_returns())
        except BaseException as exc:
            errors.append(exc)

    baseline = threading.active_count()
    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 5.0
    while worker._proc is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc = worker._proc
    assert proc is not None
    time.sleep(0.1)
    t0 = time.perf_counter()
    worker.close()  # used to wait on the fit's lock: forever with a hung child
    assert time.perf_counter() - t0 < 5.0
    thread.join(5.0)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert proc.returncode is not None
    assert _reaped(proc.pid)
    assert threading.active_count() <= baseline  # the watchdog timer is gone too


def test_overlapping_fits_are_serialised_and_a_fit_after_close_restarts() -> None:
    worker = GarchWorker(
        timeout_s=5.0, command=_child(f"time.sleep(0.05); sys.stdout.write({_GOOD!r} + '\\n')")
    )
    results: list[GarchParams] = []
    threads = [threading.Thread(target=lambda: results.append(worker.fit(_returns()))) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(10.0)
        assert len(results) == 4
        assert all(p.beta == 0.85 for p in results)
        proc = worker._proc
        assert proc is not None
        worker.close()
        assert proc.returncode is not None
        assert _reaped(proc.pid)
        assert worker.fit(_returns()).beta == 0.85  # after close: a new child
    finally:
        worker.close()
    assert worker._proc is None


def test_the_real_child_refuses_flat_returns_and_keeps_serving() -> None:
    worker = GarchWorker()
    try:
        with pytest.raises(RuntimeError, match="no variation"):
            worker.fit(np.zeros(300))  # arch's starting values used to come back as a fit
        proc = worker._proc
        assert check_garch_params(worker.fit(_simulate(TRUE, 600, seed=9))) is not None
        assert worker._proc is proc  # an error the child reported keeps the child
    finally:
        worker.close()


# -- the engine's refits ---------------------------------------------------------------------------
def _tracker(bars: int = 120) -> RiskTracker:
    tracker = RiskTracker(2, TrackerConfig(garch_refit_every=50), auto_refit=False)
    rng = np.random.default_rng(1)
    for row in rng.normal(0.0, 0.01, (bars, 2)):
        tracker.update(row)
    return tracker


def _done(value: object = None, exc: BaseException | None = None) -> Future[GarchParams]:
    f: Future[GarchParams] = Future()
    if exc is not None:
        f.set_exception(exc)
    else:
        f.set_result(value)  # type: ignore[arg-type]
    return f


@pytest.mark.parametrize(
    "outcome",
    [
        _done(exc=RuntimeError("GARCH worker failed: it exited")),
        _done(GarchParams(math.nan, 1e-6, 0.05, 0.05, 0.9)),  # garbage that is still GarchParams
        _done(GarchParams(0.0, 0.0, 0.01, 0.01, 0.485)),  # arch's starting values
        _done({"mu": 0.0}),  # not GarchParams at all
    ],
)
def test_a_failed_or_garbage_refit_keeps_the_previous_parameters_with_an_alert(
    outcome: Future[GarchParams],
) -> None:
    tracker = _tracker()
    tracker.install_garch(TRUE, fit_bar=50)
    refits = GarchRefits(lambda r: outcome, install_lag=1)
    refits.start_if_due(tracker)
    tracker.update([0.001, 0.001])
    alert = refits.install(tracker)
    assert tracker.garch_params is TRUE
    assert alert is not None
    assert "failed" in alert
    assert "previous parameters are kept" in alert
    assert refits.install(tracker) is None  # dropped: the next due refit starts afresh


def test_a_cancelled_refit_keeps_the_previous_parameters() -> None:
    tracker = _tracker()
    tracker.install_garch(TRUE, fit_bar=50)
    job: Future[GarchParams] = Future()
    job.cancel()
    refits = GarchRefits(lambda r: job, install_lag=1)
    refits.start_if_due(tracker)
    tracker.update([0.001, 0.001])
    assert "failed" in (refits.install(tracker) or "")
    assert tracker.garch_params is TRUE


def test_a_refit_requested_after_the_pool_closed_raises_nothing() -> None:
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1)
    pool.shutdown()
    tracker = _tracker()
    tracker.install_garch(TRUE, fit_bar=50)
    refits = GarchRefits(lambda r: pool.submit(lambda: TRUE), install_lag=1)
    refits.start_if_due(tracker)  # "cannot schedule new futures after shutdown": used to raise
    tracker.update([0.001, 0.001])
    assert refits.install(tracker) is None
    assert tracker.garch_params is TRUE


def test_a_hung_refit_keeps_the_old_parameters_and_lands_later() -> None:
    tracker = _tracker()
    tracker.install_garch(TRUE, fit_bar=50)
    job: Future[GarchParams] = Future()
    refits = GarchRefits(lambda r: job, install_lag=2)
    refits.start_if_due(tracker)
    alerts = []
    for _ in range(4):
        tracker.update([0.001, 0.001])
        alerts.append(refits.install(tracker))
    assert alerts[0] is None
    assert alerts[1] is not None
    assert "not ready" in alerts[1]
    assert alerts[2:] == [None, None]
    assert tracker.garch_params is TRUE
    new = GarchParams(0.0, 2e-6, 0.04, 0.08, 0.9, 7.0)
    job.set_result(new)
    tracker.update([0.001, 0.001])
    assert refits.install(tracker) is None
    assert tracker.garch_params is new


@pytest.mark.parametrize("seed", range(5))
def test_one_50_sigma_print_in_the_fhs_window_gives_a_usable_model(seed: int) -> None:
    r = np.random.default_rng(seed).normal(0.0, 0.01, 500)
    r[250] = 0.5  # SLSQP used to stop at alpha + gamma = -1e-6, which check_garch_params refused
    p = check_garch_params(fit_gjr_garch(r))
    assert p.alpha >= 0.0
    assert p.alpha + p.gamma >= 0.0
    assert p.beta >= 0.0
    assert np.isfinite(p.variance(r)).all()
