"""False and true correlation shocks when assets join and leave (synthetic paths only).

Each world: ``core`` assets with a one-factor correlation of 0.4 held throughout, and ``odd``
assets, independent of everything, that join and leave at random (each absent one joins with
probability 1/150 a bar, each present one leaves with 1/150). The true correlations never change,
so every bar with the shock flag up after the first 300 is a false alarm; in the second run of each
world the core's correlation rises to 0.85 at bar 900, and the flag's bars among the 60 after it
measure detection. Two trackers read the same paths: the library's (the baseline follows a change
of the pairs averaged) and one whose baseline ignores such changes (the rule before 2026-12-02).

    python benchmarks/shock_universe_churn.py [--seeds 10] [--bars 1500]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from advanced_risk.risk.tracker import RiskTracker

SIZES = ((3, 2), (5, 3), (10, 5), (20, 10))


class FixedBaseline(RiskTracker):
    """The tracker with the earlier rule: a change of the pairs averaged leaves the baseline as is."""

    def _rebase(self, new: float, old: float, share: float = 1.0) -> None:
        return


def world(
    kind: type[RiskTracker], seed: int, n_core: int, n_odd: int, bars: int, shock_at: int | None
) -> int:
    """Bars with the flag up: after bar 300 (false alarms), or in the 60 after ``shock_at``."""
    rng = np.random.default_rng(seed)
    tracker = kind(n_core)
    present: list[int] = []
    flagged = 0
    for t in range(bars):
        rho = 0.4 if shock_at is None or t < shock_at else 0.85
        core = 0.01 * (
            math.sqrt(rho) * rng.standard_normal() + math.sqrt(1 - rho) * rng.standard_normal(n_core)
        )
        for k in range(n_odd):
            if k in present and rng.random() < 1 / 150:
                tracker.remove_assets([n_core + present.index(k)])
                present.remove(k)
            elif k not in present and t > 0 and rng.random() < 1 / 150:
                tracker.add_assets(1)
                present.append(k)
        tracker.update(np.concatenate([core, 0.01 * rng.standard_normal(len(present))]))
        window = t > 300 if shock_at is None else shock_at <= t < shock_at + 60
        flagged += bool(window and tracker.correlation_shock)
    return flagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--bars", type=int, default=1500)
    args = parser.parse_args()
    print(f"{'assets (core + churning)':>26}  {'false-alarm bars (of ' + str(args.bars - 301) + ')':>28}  "
          f"{'detection bars (of 60)':>24}")  # fmt: skip
    print(f"{'':>26}  {'fixed baseline':>14} {'follows':>13}  {'fixed baseline':>14} {'follows':>9}")
    for n_core, n_odd in SIZES:
        row = []
        for shock_at in (None, 900):
            for kind in (FixedBaseline, RiskTracker):
                runs = [world(kind, s, n_core, n_odd, args.bars, shock_at) for s in range(args.seeds)]
                row.append(sum(runs) / len(runs))
        print(f"{f'{n_core} + {n_odd}':>26}  {row[0]:14.0f} {row[1]:13.0f}  {row[2]:14.0f} {row[3]:9.0f}")


if __name__ == "__main__":
    main()
