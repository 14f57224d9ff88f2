"""The figures of the journal's HTML report, each a base64 PNG ready for an ``<img src="data:...">``.

Matplotlib's object API on an Agg canvas (no pyplot, no global state, no display); one function per
figure, each taking plain arrays over the decisions' journal positions (x axis: decision number,
journal order). Needs matplotlib (extra ``[report]``).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "STATE_COLOURS",
    "equity_figure",
    "exposure_figure",
    "latency_figure",
    "states_figure",
    "var_figure",
]

FloatArray = NDArray[np.float64]

STATE_COLOURS = {"active": "#2e7d32", "reducing": "#f9a825", "halted": "#c62828"}
"""Colour of each trading state in the timeline (unknown states: grey)."""


def _figure(rows: int = 1, height: float = 3.2) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, height * rows), layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(rows, 1, sharex=True)))
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def _png(fig: Figure) -> str:
    """The figure as base64 PNG text (96 dpi)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def equity_figure(x: FloatArray, equity: FloatArray, drawdown: FloatArray) -> str:
    """Equity as reported with each bar, and the drawdown the rules used (NaN: gaps)."""
    fig, (top, bottom) = _figure(2, 2.6)
    top.plot(x, equity, color="#1565c0", lw=1.2)
    top.set_ylabel("equity")
    bottom.fill_between(x, -np.nan_to_num(drawdown), 0.0, color="#c62828", alpha=0.4, step="mid")
    bottom.set_ylabel("drawdown")
    bottom.set_xlabel("decision (journal order)")
    return _png(fig)


def var_figure(x: FloatArray, returns: FloatArray, var: FloatArray, cvar: FloatArray) -> str:
    """Realised book returns after each decision against -VaR and -CVaR; breaches in red."""
    fig, (ax,) = _figure(1, 3.6)
    ax.vlines(x, 0.0, np.nan_to_num(returns), color="#90a4ae", lw=1.0, label="realised book return")
    ax.plot(x, -var, color="#e65100", lw=1.0, label="-VaR")
    ax.plot(x, -cvar, color="#6a1b9a", lw=1.0, ls="--", label="-CVaR")
    hit = returns < -var
    ax.scatter(x[hit], returns[hit], color="#c62828", s=18, zorder=3, label="breach")
    ax.set_xlabel("decision (journal order)")
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig)


def exposure_figure(x: FloatArray, leverage: FloatArray, hedge_ratio: FloatArray) -> str:
    """Leverage and the hedge ratio (0 while the hedge is off) per decision."""
    fig, (ax,) = _figure(1, 3.0)
    ax.step(x, leverage, where="mid", color="#1565c0", label="leverage")
    ax.step(x, hedge_ratio, where="mid", color="#6a1b9a", label="hedge ratio")
    ax.set_xlabel("decision (journal order)")
    ax.legend(loc="upper right", fontsize=8)
    return _png(fig)


def states_figure(x: FloatArray, states: Sequence[str], degraded: NDArray[np.bool_]) -> str:
    """The trading state as a coloured band per decision; degraded decisions ticked below it."""
    fig, (ax,) = _figure(1, 1.6)
    from matplotlib.colors import to_rgb

    band = np.array([[to_rgb(STATE_COLOURS.get(s, "#9e9e9e")) for s in states]])
    left, right = (x[0] - 0.5, x[-1] + 0.5) if len(x) else (0.0, 1.0)
    ax.imshow(band, aspect="auto", extent=(left, right, 0.3, 1.3), interpolation="nearest")
    ax.vlines(x[degraded], 0.0, 0.25, color="black", lw=0.8)
    ax.set_ylim(0.0, 1.3)
    ax.set_yticks([])
    ax.grid(False)
    ax.set_xlabel("decision (journal order); black ticks: degraded")
    return _png(fig)


def latency_figure(latency_ms: FloatArray) -> str:
    """Histogram of the decision latencies (log-spaced bins when they span a decade or more)."""
    fig, (ax,) = _figure(1, 3.0)
    values = latency_ms[np.isfinite(latency_ms) & (latency_ms > 0)]
    lo, hi = (values.min(), values.max()) if values.size else (0.01, 1.0)
    if hi / lo >= 10.0:
        ax.hist(values, bins=np.geomspace(lo, hi, 40).tolist(), color="#1565c0")
        ax.set_xscale("log")
    else:
        ax.hist(values, bins=40, color="#1565c0")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("decisions")
    return _png(fig)


def drift_figure(x: FloatArray, scores: dict[str, FloatArray], replaced: dict[str, NDArray[np.bool_]]) -> str:
    """Each model's input drift score per decision (NaN: gaps), the decisions it was replaced marked."""
    fig, (ax,) = _figure(1, 3.0)
    for model, score in scores.items():
        (line,) = ax.plot(x, score, lw=1.0, label=model)
        hit = replaced.get(model, np.zeros(len(x), dtype=bool))
        ax.scatter(x[hit], score[hit], color=line.get_color(), s=6, zorder=3)
    ax.set_xlabel("decision (journal order); dots: the model's advice was replaced by the rules")
    ax.set_ylabel("drift score")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)
