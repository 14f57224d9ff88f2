"""Training of the PPO policy and the MAPPO risk agents (``train_ppo_agent.py``).

- ``cli``: the command line; ``settings``: the resolved settings (a leaf: every module below takes
  them, it imports none); ``pipeline``: the whole run (data, training, policy file, report);
  ``ppo``: the PPO training loop; ``agents``: the MAPPO risk-agents run; ``distributed``: the Ray
  backend and the Ray Tune search (``[distributed]``); ``checkpoint``: resumable checkpoints;
  ``data``: the training and evaluation markets; ``report``: the training report.

Imports go one way: ``cli`` -> ``pipeline`` -> ``agents``, ``distributed`` -> ``ppo`` ->
``checkpoint``, ``report``, ``data`` -> ``settings`` (checked by ``lint-imports``).

Needs the ``[train]`` extra (torch, gymnasium, pettingzoo, tensorboard, matplotlib, tqdm).
"""
