"""Risk report on the bundled real data (also ``python -m advanced_risk report``).

See :mod:`advanced_risk.reports` for what it prints. Run:  python examples/risk_report.py
"""

from advanced_risk.reports import risk_report

if __name__ == "__main__":
    risk_report()
