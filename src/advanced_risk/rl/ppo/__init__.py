"""PPO: the agent (torch), its rollout buffer, loss, observation normaliser and network, the frozen
NumPy copy used for inference, and the model-file format every trained component is saved in."""
