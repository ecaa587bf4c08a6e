"""Console-script plumbing shared by the entry points: exit status, one-line errors, quiet logs, fast ``--help``.

``setup.cfg`` points each ``ldnet-*`` script at a ``*_cli`` function built with :func:`console_entry`; the
``*_main(argv)`` functions stay plain Python (they return their results and raise on errors).

* Exit status 0 on success, non-zero with a one-line ``prog: error: ...`` on failure.
* Logs are quiet by default: transformers and datasets at WARNING, our own ``ldnet.*`` / ``trainers`` / ``serving``
  / ``processing`` / ``modeling_ldnet`` loggers at INFO. ``--verbose`` (added to every parser built here) shows the
  libraries' INFO lines too (for ``TrainingArguments`` parsers: ``--log_level info`` unless one is given).
  onnxruntime keeps its own default (WARNING).
* ``--help`` output is cached per program, arguments, terminal width, library versions and the source of our
  packages (``$LDNET_CACHE_DIR``, default ``~/.cache/ldnet``; ``LDNET_HELP_CACHE=0`` disables it): building the
  ``TrainingArguments`` parser needs torch and transformers (seconds), printing a cached page does not.

Library module: imports no entry point (see ARCHITECTURE.md), and nothing heavy at import time (transformers is
imported when :class:`ArgumentsParser` is first used).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:  # pragma: no cover
    from transformers import HfArgumentParser

REPO = Path(__file__).resolve().parents[1]
#: the packages whose source decides what a ``--help`` page says (the cache key hashes their ``.py`` files)
HELP_SOURCES = ("trainers", "processing", "modeling_ldnet", "serving")
#: libraries whose version decides a ``--help`` page (TrainingArguments' fields and defaults)
HELP_LIBRARIES = ("transformers", "accelerate", "torch", "datasets")
#: our loggers: INFO by default
OWN_LOGGERS = ("ldnet", "trainers", "serving", "processing", "modeling_ldnet")
#: third-party loggers that log INFO lines through the root logger (HTTP requests, file locks)
CHATTY_LOGGERS = ("httpx", "httpcore", "urllib3", "filelock", "fsspec", "accelerate")

VERBOSE_HELP = "show the libraries' INFO logs (transformers, datasets, ...); default: ours only"


# ---------------------------------------------------------------------------------------------------------------
# logging
# ---------------------------------------------------------------------------------------------------------------


def configure_logging(verbose: bool = False) -> None:
    """Our loggers at INFO; transformers / datasets (and the chatty HTTP loggers) at WARNING, or INFO with
    ``verbose``. Cheap: the libraries read ``TRANSFORMERS_VERBOSITY`` / ``DATASETS_VERBOSITY`` when imported, and
    are set directly when already imported. An explicit ``TRANSFORMERS_VERBOSITY`` in the environment wins over
    the quiet default (not over ``--verbose``)."""
    level = logging.INFO if verbose else logging.WARNING
    name = "info" if verbose else "warning"
    for var in ("TRANSFORMERS_VERBOSITY", "DATASETS_VERBOSITY"):
        if verbose:
            os.environ[var] = name
        else:
            os.environ.setdefault(var, name)
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.set_verbosity(_level_of(os.environ["TRANSFORMERS_VERBOSITY"]))
    if "datasets" in sys.modules:
        sys.modules["datasets"].utils.logging.set_verbosity(_level_of(os.environ["DATASETS_VERBOSITY"]))
    for logger_name in CHATTY_LOGGERS:
        logging.getLogger(logger_name).setLevel(level)
    for logger_name in OWN_LOGGERS:
        logging.getLogger(logger_name).setLevel(logging.INFO)


def _level_of(name: str) -> int:
    level = getattr(logging, name.upper(), None)
    return level if isinstance(level, int) else logging.WARNING


class _Verbose:
    """Mixin: every parser has ``--verbose``; parsing it applies :func:`configure_logging`. ``ns.verbose`` stays in
    an argparse namespace; ``HfArgumentParser`` namespaces lose it (it would come back as an extra namespace)."""

    _keep_verbose = True

    def _add_verbose(self) -> None:
        self.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        ns, rest = super().parse_known_args(args, namespace)
        verbose = bool(getattr(ns, "verbose", False))
        if hasattr(ns, "verbose") and not self._keep_verbose:
            del ns.verbose
        if verbose and getattr(ns, "log_level", None) == "passive":
            ns.log_level = "info"  # TrainingArguments: transformers' own INFO lines (trainers' setup_logging)
        configure_logging(verbose)
        return ns, rest


class _OneLineErrors:
    """Mixin: a usage error is one line on stderr (``prog: error: ...``) and exit status 2, like argparse minus the
    usage block (``--help`` still prints the full usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class ArgumentParser(_OneLineErrors, _Verbose, argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with one-line usage errors and ``--verbose``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._add_verbose()


def _arguments_parser_class() -> type[HfArgumentParser]:
    from transformers import HfArgumentParser

    class ArgumentsParser(_OneLineErrors, _Verbose, HfArgumentParser):
        """``transformers.HfArgumentParser`` with one-line usage errors and ``--verbose``."""

        _keep_verbose = False

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._add_verbose()

    ArgumentsParser.__module__ = __name__
    return ArgumentsParser


def __getattr__(name: str) -> Any:
    # ArgumentsParser subclasses transformers' HfArgumentParser: built on first use, so importing this module (every
    # console script does) costs no transformers import
    if name == "ArgumentsParser":
        cls = _arguments_parser_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------------------------
# deferred imports of the entry points
# ---------------------------------------------------------------------------------------------------------------


def deferred_getattr(namespace: dict[str, Any], aliases: dict[str, str] | None = None) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for an entry point's module: the first access of a name it lacks runs its
    deferred imports (:func:`import_deferred`), so ``from trainers.<module> import <training-stack name>`` works;
    ``aliases`` maps former names to current ones."""

    def __getattr__(name: str) -> Any:
        if not name.startswith("__"):
            import_deferred(namespace)
            name = (aliases or {}).get(name, name)
            if name in namespace:
                return namespace[name]
        raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")

    return __getattr__


def import_deferred(namespace: dict[str, Any]) -> None:
    """Run the import statements of the ``if TYPE_CHECKING:`` block of the module whose globals are ``namespace``.

    An entry point lists its heavy imports (torch, transformers, the training stack) there, once, at the top: type
    checkers and linters read them as usual, and the module calls this before the code that needs them runs, so
    importing the module (``ldnet-train --help``, ``from trainers.cli import accelerate_cpu_processes_requested``)
    stays cheap. Idempotent (the imported modules are cached anyway).
    """
    if namespace.get("_deferred_imported"):
        return
    path = namespace["__file__"]
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), path)
    body = [
        stmt
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for stmt in node.body
        if isinstance(stmt, (ast.Import, ast.ImportFrom))
    ]
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), namespace)  # noqa: S102 - our own source
    namespace["_deferred_imported"] = True


# ---------------------------------------------------------------------------------------------------------------
# --help cache
# ---------------------------------------------------------------------------------------------------------------


def help_cache_dir() -> Path:
    base = os.environ.get("LDNET_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ldnet"
    return Path(base) / "help"


def help_cache_key(prog: str, argv: Iterable[str], roots: Iterable[Path] | None = None) -> str:
    """What a ``--help`` page depends on: the program and its arguments, the terminal width (argparse wraps to it),
    python and library versions, ``LDNET_`` / ``ACCELERATE_`` / ``HF_`` / ``TRANSFORMERS_`` variables, and every
    ``.py`` file of our packages (``roots``, default :data:`HELP_SOURCES`), so an edited option never shows a stale
    page."""
    from importlib import metadata

    h = hashlib.sha256()
    for part in (prog, *argv, str(shutil.get_terminal_size().columns), sys.version):
        h.update(part.encode() + b"\0")
    for lib in HELP_LIBRARIES:
        try:
            h.update(f"{lib}={metadata.version(lib)}\0".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{lib}=-\0".encode())
    for key, value in sorted(os.environ.items()):
        if key.startswith(("LDNET_", "ACCELERATE_", "HF_", "TRANSFORMERS_")):
            h.update(f"{key}={value}\0".encode())
    for root in roots if roots is not None else (REPO / p for p in HELP_SOURCES):
        for path in sorted(Path(root).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:32]


def _wants_help(argv: list[str]) -> bool:
    return any(a in ("-h", "--help") for a in argv) and os.environ.get("LDNET_HELP_CACHE", "1") != "0"


class _Tee(io.TextIOBase):
    """Writes through to ``stream`` and keeps a copy (the help page, to cache it)."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.parts = stream, []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def _store_help(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8", suffix=".tmp") as fh:
            fh.write(text)
        os.replace(fh.name, path)
    except OSError:  # a read-only home: the page was printed, only the next --help is slower
        pass


def _run_help(prog: str, run: Callable[[], int], argv: list[str]) -> int:
    path = help_cache_dir() / f"{prog}-{help_cache_key(prog, argv)}.txt"
    if path.is_file():
        sys.stdout.write(path.read_text(encoding="utf-8"))
        return 0
    tee = _Tee(sys.stdout)
    sys.stdout = tee
    try:
        return run()
    except SystemExit as exc:
        if exc.code in (0, None) and tee.parts:
            _store_help(path, "".join(tee.parts))
        raise
    finally:
        sys.stdout = tee.stream


# ---------------------------------------------------------------------------------------------------------------
# console scripts
# ---------------------------------------------------------------------------------------------------------------


def console_entry(prog: str, main: Callable[[list[str] | None], Any]) -> Callable[[], int]:
    """A console-script function: runs ``main(None)`` (``sys.argv``), returns 0; an exception becomes
    ``prog: error: <ExceptionType>: <message>`` (one line) on stderr and exit status 1. ``LDNET_TRACEBACK=1`` re-raises
    for the full traceback. ``SystemExit`` (``--help``, usage errors, a failed worker) passes through unchanged.
    Logs start quiet (:func:`configure_logging`); a ``--help`` page is served from the cache when it can be."""

    def run_main() -> int:
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

    def run() -> int:
        configure_logging(verbose="--verbose" in sys.argv[1:])
        argv = sys.argv[1:]
        if _wants_help(argv):
            return _run_help(prog, run_main, argv)
        return run_main()

    run.__name__ = run.__qualname__ = f"{prog.replace('-', '_')}_cli"
    run.__doc__ = f"Console script ``{prog}``: exit status 0 on success, 1 (one-line error on stderr) on failure."
    return run


__all__ = [  # noqa: F822 - ArgumentsParser is served by __getattr__
    "ArgumentParser", "ArgumentsParser", "configure_logging", "console_entry", "help_cache_key", "import_deferred",
]
