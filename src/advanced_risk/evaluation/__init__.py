"""Evaluation of the learned policy and of the risk rules, and their reports.

- ``stats``: the statistics both pipelines share (block bootstrap, paired tests, intervals).
- ``policy``: the PPO policy against baselines on held-out paths (``evaluate_sp500.py``).
- ``report``: its Markdown/JSON/plot report.
- ``rules``: the risk layer against the unmanaged book and a textbook volatility target
  (``python -m advanced_risk evaluate-rules``).
"""
