"""Synthetic data: the simulator, its scenarios, the demo and the incident library."""
