#!/usr/bin/env python
"""Train the PPO portfolio allocator and write an out-of-sample report (thin shim).

All the work is in :mod:`advanced_risk.training.pipeline`; the flags are documented by ``--help``
and in ``docs/training.md``. Examples::

    python train_ppo_agent.py --quick
    python train_ppo_agent.py --episodes 5 --asset-count 5 --evaluate --plot --out runs/x
    python train_ppo_agent.py --resume --out runs/x
"""

from __future__ import annotations

import sys

from advanced_risk.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
