"""Benchmark cases of measures/var.py: rolling historical VaR against pandas, one VaR against numpy.

Run: ``cd benchmarks && ../.venv/bin/python -c "import cases_var as c; from _harness import print_table;
print_table(c.rows())"``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from _harness import Row, median_seconds
from advanced_risk.measures import historical_var, rolling_historical_var


def _assets(n_days: int = 2500, n_assets: int = 20) -> np.ndarray:
    return 0.01 * np.random.default_rng(0).standard_t(4, (n_days, n_assets))


def rows() -> list[Row]:
    """Rolling VaR 250d over 20 assets x 2500 days at 99% and 95%; one 250-day VaR vs np.quantile."""
    r = _assets()
    frame = pd.DataFrame(r)
    out = []
    for alpha in (0.99, 0.95):
        ours = median_seconds(lambda a=alpha: rolling_historical_var(r, 250, a))
        ref = median_seconds(lambda a=alpha: frame.rolling(250).quantile(1 - a).shift(1))
        out.append(
            Row(f"rolling hist VaR {alpha:.0%} 250d, 20x2500", "pandas rolling.quantile", ours, ref, 1.5)
        )
    x = np.ascontiguousarray(r[-250:, 0])
    ours = median_seconds(lambda: historical_var(x, 0.99))
    ref = median_seconds(lambda: -np.quantile(x, 0.01))
    out.append(Row("historical VaR 99%, 250 values", "-np.quantile (linear)", ours, ref, 1.0))
    return out


if __name__ == "__main__":
    from _harness import print_table

    print_table(rows())
