"""``python -m advanced_risk``: the command-line entry points of the package.

- ``python -m advanced_risk report``: VaR backtests of the S&P 500 index and a risk snapshot of
  20 S&P 500 stocks (the foundation's report).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m advanced_risk", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("report", help="VaR backtest table (S&P 500 index) and a 20-stock risk snapshot")
    args = parser.parse_args(argv)
    if args.command == "report":
        from advanced_risk.reports import risk_report

        risk_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
