"""Training of the PPO policy and the MAPPO risk agents (``train_ppo_agent.py``).

- ``cli``: the command line; ``ppo``: the PPO training run (settings, loop, evaluation, outputs);
  ``agents``: the MAPPO risk-agents run; ``distributed``: the Ray Tune search (``[distributed]``);
  ``checkpoint``: resumable checkpoints; ``data``: the training and evaluation markets;
  ``report``: the training report.

Needs the ``[train]`` extra (torch, gymnasium, pettingzoo, tensorboard, matplotlib, tqdm).
"""
