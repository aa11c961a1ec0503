"""Experiments: hyper-parameter sweeps (Optuna), trials, the search space, compare across runs."""
