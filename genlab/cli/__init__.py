"""`genlab data|recipes|train|eval|generate|export|serve|sweep|report|eval-nets`: a thin layer on the Python API.

- parser.py: the arguments, built without torch (`genlab --help` and `--version` answer at once);
- commands.py: what each command does, on the Python API (genlab.api), loaded once a command runs.

The CLI names no task: it asks the registry (genlab.tasks) and the run handles. Every error a user can
cause is one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import yaml

from genlab.cli.parser import load_commands, parse_args
from genlab.errors import GenlabError


def main(argv: list[str] | None = None) -> int:
    """Run one command. The one error boundary: whatever a user's input or files cause is one line on
    stderr — exit 2 for bad input, 130 for Ctrl-C — and a closed stdout (`| head`) ends quietly."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    run = load_commands()
    plain_format = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"genlab: warning: {message}\n"
    try:
        run.COMMANDS[args.command](args)
    except run.Interrupted as exc:  # a GenlabError: Ctrl-C during training, after the checkpoint was saved
        print(f"genlab: {exc}", file=sys.stderr)
        return 130
    except GenlabError as exc:
        print(f"genlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away: send the rest of our output nowhere, so Python's exit does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command cut off by `head`
    except (OSError, UnicodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"genlab: error: {type(exc).__name__}{where}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = plain_format
    return 0


__all__ = ["main"]
