"""GJR-GARCH refits of the tracker, fitted off the decision path and installed at a fixed bar.

A refit starts at the bar the tracker says it is due (:attr:`RiskTracker.garch_refit_due`): the
tracker's filtered-historical returns of the book the engine last priced (at unit gross exposure;
the equal-weight book before the first decision) go to ``background`` (the manager: a worker
process). A short book is fitted on its own returns, so the leverage effect of the model has the
short's sign: its variance rises after the asset rallies, not after it falls.
A refit takes effect ``install_lag`` bars later, whenever the fit finishes: the install
bar is fixed by the bar count, so a replay of the same bars installs at the same bar. One refit runs
at a time.

A refit that has not landed by its install bar is not a fault: the previous parameters stay in
force (they move slowly) and the refit takes effect at the first bar it has landed by. Only replays
lose: that bar then depends on the machine's speed, which the install bar's alert says
(``RiskConfig.deterministic_refits`` makes the manager wait instead).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from advanced_risk.logs import get_logger
from advanced_risk.measures.validation import FloatArray
from advanced_risk.risk.garch import GarchParams, check_garch_params
from advanced_risk.risk.tracker import RiskTracker

__all__ = ["Background", "GarchRefits"]

log = get_logger(__name__)

Background = Callable[[FloatArray], "Future[GarchParams]"]
"""Starts a GJR-GARCH fit of these returns off the decision path (the manager: a worker process)."""


class GarchRefits:
    """The pending refit of one tracker: when it started, when it is due, and its installation.

    Parameters
    ----------
    background : starts a fit off the decision path; None: refits are never started (the tracker
        keeps the parameters it has).
    install_lag : bars between the bar a refit starts and the bar it takes effect (>= 1).
    """

    def __init__(self, background: Background | None, install_lag: int) -> None:
        self._background = background
        self._install_lag = install_lag
        self._job: Future[GarchParams] | None = None
        self._fit_bar = 0  # the bar count whose data the pending fit uses

    def start_if_due(self, tracker: RiskTracker, book: FloatArray | None = None) -> None:
        """Start a refit if one is due and none is pending: of ``book``'s returns (one weight per
        asset, not all zero), else of the equal-weight book's."""
        if self._background is None or self._job is not None or not tracker.garch_refit_due:
            return
        weights = np.full(tracker.n_assets, 1.0 / tracker.n_assets) if book is None else book
        try:
            job = self._background(tracker.fhs_returns(weights))
        except Exception as exc:  # e.g. its executor shut down by close(): keep the old parameters
            log.warning("garch_refit_not_started", error=repr(exc))
            return
        self._fit_bar = tracker.n_observations
        self._job = job

    def pending(self, timeout: float) -> tuple[int, GarchParams] | None:
        """``(fit bar, parameters)`` of the refit started and not yet installed, waiting up to
        ``timeout`` seconds for it to land; None when there is none, or it fails or is late (a
        snapshot then leaves it out, and the restarted tracker asks for a refit of its own)."""
        job = self._job
        if job is None:
            return None
        try:
            return self._fit_bar, check_garch_params(job.result(timeout=timeout), "GJR-GARCH refit")
        except Exception as exc:
            log.warning("garch_refit_not_saved", error=repr(exc), fit_bar=self._fit_bar)
            return None

    def resume(self, fit_bar: int, params: GarchParams) -> None:
        """Take over a refit a snapshot saved (:meth:`pending`): it installs at its own bar,
        ``fit_bar + install_lag``, as it would have without the restart."""
        job: Future[GarchParams] = Future()
        job.set_result(params)
        self._job, self._fit_bar = job, int(fit_bar)

    def due(self, tracker: RiskTracker) -> Future[GarchParams] | None:
        """The pending refit if it must take effect at this bar (or is overdue), else None."""
        job = self._job
        if job is None or tracker.n_observations < self._fit_bar + self._install_lag:
            return None
        return job

    def install(self, tracker: RiskTracker) -> str | None:
        """Install a due refit that has landed; an alert at its install bar if it has not.

        A fit that failed (it raised, was cancelled, or gave parameters that are not a usable model:
        :func:`~advanced_risk.risk.garch.check_garch_params`) is logged (``garch_refit_failed``),
        dropped and said in an alert: the previous parameters stay, and the tracker asks for a new
        refit. Nothing raises into the caller.
        """
        job = self.due(tracker)
        if job is None:
            return None
        if not job.done():
            install_bar = self._fit_bar + self._install_lag
            if tracker.n_observations != install_bar:
                return None
            return (
                f"GJR-GARCH refit of bar {self._fit_bar} not ready at its install bar "
                f"{install_bar} (garch_install_lag={self._install_lag}); the previous parameters are "
                "kept until it lands (a replay may differ from here: deterministic_refits=True waits)"
            )
        self._job = None
        try:
            params = check_garch_params(job.result(), "GJR-GARCH refit")
            tracker.install_garch(params, fit_bar=self._fit_bar)
        except Exception as exc:  # the fit failed: keep the previous parameters, refit next bar
            log.warning("garch_refit_failed", error=repr(exc), fit_bar=self._fit_bar)
            kept = "the previous parameters are kept" if tracker.garch_params is not None else "no fit yet"
            return f"GJR-GARCH refit of bar {self._fit_bar} failed ({exc!s:.200}); {kept}"
        return None
