"""The portfolio policy's world: markets, the environment, its accounting and the trained manager.

- ``market``: market simulators (correlated GBM, regime switching, historical replay).
- ``accounting``: observation features and portfolio accounting shared by the environment, the
  policy at inference and the risk agents (NumPy/numba only).
- ``env``: the gymnasium ``TradingEnvironment`` and its vectorised twin.
- ``manager``: ``RLPortfolioManager``, a trained policy with its environment settings.
- ``allocator``: that manager seen by the risk engine as an ``Allocator``.
- ``asset_names``: matching a policy's asset names to a bar's.
"""
