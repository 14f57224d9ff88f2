"""The MAPPO risk agents (sizing, hedging, leverage): their PettingZoo environment, the trainer,
the inference-only policy, their evaluation and the advisor the risk manager consults."""
