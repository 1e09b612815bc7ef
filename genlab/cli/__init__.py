"""`genlab data|recipes|train|eval|generate|export|serve|sweep|report|eval-nets`: a thin layer on the Python API.

- parser.py: the arguments, built without torch (`genlab --help` and `--version` answer at once);
- commands.py: what each command does, on the Python API (genlab.api), loaded once a command runs.

The CLI names no task: it asks the registry (genlab.tasks) and the run handles. Every error a user can
cause is one line on stderr and exit status 2; anything else is a bug, one line and exit status 70
(docs/reliability.md).
"""

from __future__ import annotations

import os
import sys
import warnings

from genlab.cli.parser import load_commands, parse_args
from genlab.errors import GenlabError
from genlab.io.validate import environ

# What str.splitlines breaks at, shown escaped (\n, \x0c) so that an error stays one line.
LINE_BREAKS = str.maketrans({c: ascii(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})
EXIT_BAD_INPUT, EXIT_BUG, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 70, 130, 141  # 70: sysexits' EX_SOFTWARE


def _split_debug(argv: list[str] | None) -> tuple[list[str], bool]:
    """argv without its `--debug` flags (accepted anywhere before `--`), and whether a traceback was asked for."""
    argv = list(sys.argv[1:] if argv is None else argv)
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [a for a in argv[:end] if a != "--debug"] + argv[end:]
    return kept, len(kept) < len(argv) or environ("GENLAB_DEBUG") not in (None, "0")


def _error_line(exc: BaseException) -> str:
    """An exception the user's machine raised (a full disk, a permission, a file that vanished) as one line."""
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    reason = (str(exc).splitlines() or [""])[0]
    return f"genlab: error: {type(exc).__name__}{where}: {reason}".translate(LINE_BREAKS)


def main(argv: list[str] | None = None) -> int:
    """Run one command. The one error boundary: whatever a user's input or files cause is one line on
    stderr — exit 2 for bad input, 130 for Ctrl-C — and a closed stdout (`| head`) ends quietly. Anything
    else is a bug: one line naming the command and the error, exit 70 (the traceback with --debug)."""
    argv, debug = _split_debug(argv)
    args = parse_args(argv)
    run = load_commands()
    plain_format = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"genlab: warning: {message}\n"
    try:
        run.check_arguments(args)
        run.COMMANDS[args.command](args)
    except run.Interrupted as exc:  # a GenlabError: Ctrl-C during training, after the checkpoint was saved
        print(f"genlab: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except GenlabError as exc:
        print(f"genlab: error: {str(exc).translate(LINE_BREAKS)}", file=sys.stderr)  # a typed name may hold a newline
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("genlab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away: send the rest of our output nowhere, so Python's exit does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE  # 128 + SIGPIPE, what a shell reports for a command cut off by `head`
    except OSError as exc:  # the machine, not genlab
        print(_error_line(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # the last resort: validation missed something, which is a bug to report
        if debug:
            raise
        message = (str(exc).splitlines() or [""])[0][:300]
        print(
            f"genlab: internal error in `genlab {args.command}`: {type(exc).__name__}: {message} "
            "(a bug; rerun with --debug or GENLAB_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_BUG
    finally:
        warnings.formatwarning = plain_format
    return 0


__all__ = ["main"]
