"""genlab's version: the one place it is written (pyproject.toml reads it, `genlab --version` prints it)."""

__version__ = "0.3.0"
