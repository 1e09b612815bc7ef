"""Shared machinery every task uses and none owns: recipes, run directories, the trainer loop,
checkpoints, distributed set-up, optimiser helpers and the Task contract. Nothing here imports a task."""
