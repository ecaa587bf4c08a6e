"""Console-script plumbing shared by the entry points: exit status 0 on success, non-zero with a one-line error.

``setup.cfg`` points each ``ldnet-*`` script at a ``*_cli`` function built with :func:`console_entry`; the
``*_main(argv)`` functions stay plain Python (they return their results and raise on errors).
Library module: imports no entry point (see ARCHITECTURE.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from transformers import HfArgumentParser


class _OneLineErrors:
    """Mixin: a usage error is one line on stderr (``prog: error: ...``) and exit status 2, like argparse minus the
    usage block (``--help`` still prints the full usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class ArgumentParser(_OneLineErrors, argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with one-line usage errors."""


class ArgumentsParser(_OneLineErrors, HfArgumentParser):
    """``transformers.HfArgumentParser`` with one-line usage errors."""


def console_entry(prog: str, main: Callable[[list[str] | None], Any]) -> Callable[[], int]:
    """A console-script function: runs ``main(None)`` (``sys.argv``), returns 0; an exception becomes
    ``prog: error: <ExceptionType>: <message>`` (one line) on stderr and exit status 1. ``LDNET_TRACEBACK=1`` re-raises
    for the full traceback. ``SystemExit`` (``--help``, usage errors, a failed worker) passes through unchanged."""

    def run() -> int:
        try:
            main(None)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # noqa: BLE001 - the one place that turns any failure into an exit status
            if os.environ.get("LDNET_TRACEBACK"):
                raise
            message = " ".join(str(exc).split()) or "(no message)"
            print(f"{prog}: error: {type(exc).__name__}: {message}", file=sys.stderr)
            return 1
        return 0

    run.__name__ = run.__qualname__ = f"{prog.replace('-', '_')}_cli"
    run.__doc__ = f"Console script ``{prog}``: exit status 0 on success, 1 (one-line error on stderr) on failure."
    return run


__all__ = ["ArgumentParser", "ArgumentsParser", "console_entry"]
