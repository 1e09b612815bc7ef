"""Shared machinery every task uses and none owns: recipes, run directories, the trainer loop and the training
side it drives, checkpoints, distributed set-up, optimiser helpers. Nothing here imports a model or a task."""
