"""Hyperparameter search with Optuna: `genlab sweep RECIPE --space SPACE.yaml --trials N`.

- space.py: the search space file (objective, sampler, pruner, params), read and checked against the recipe;
- storage.py: where the study lives (a journal file by default, or an RDB URL) and recovery of trials
  whose worker was killed;
- study.py: the workers, each running trials as ordinary `genlab.fit` runs with a pruning callback;
- report.py: `genlab report sweeps/<study>`, a Markdown report with plots.

docs/sweeps.md describes the whole.
"""
