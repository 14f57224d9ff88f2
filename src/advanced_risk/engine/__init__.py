"""The decision engine behind ``AdvancedRiskManager``: one bar in, one journalled decision out.

- ``inputs``: validation of a bar (``MarketState`` + ``Portfolio``) into arrays in a fixed asset order.
- ``core``: ``DecisionEngine``: observe a bar (tracker, ATR, drawdowns), then decide (rules, leverage,
  hedge, sizes, stops, VaR/CVaR), and the conservative decision of a degraded bar.
- ``protocols``: the ``Allocator`` and ``Advisor`` interfaces through which a policy or risk agents
  advise the engine (the engine never imports the learned components themselves).
- ``components``: runs the allocator and the advisor of one call within its deadline (inline, or on
  one worker thread), their faults as text for a degraded decision.
- ``refits``: GJR-GARCH refits of the tracker, fitted off the decision path and installed a fixed
  number of bars later (replays match).
- ``state``: the SQLite store of the safety state (peak equity, trading state, kill switch) and the
  decision journal; ``journal``: the writer thread and the inline commits that feed it.

Layers: ``measures`` < ``risk`` < ``engine`` < ``manager`` (checked by ``make lint``).
"""
