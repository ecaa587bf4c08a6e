"""``processing``: converters from upstream benchmark formats to the unified record (SPEC §1).

    >>> from processing import BENCHMARKS, convert_benchmark, load_unified
    >>> dd, report = convert_benchmark("conll04", "shared/data/conll04", "out/conll04")
    >>> print(report.summary())
    >>> dd2 = load_unified("out/conll04")        # DatasetDict with UNIFIED_FEATURES

Command line: ``python -m processing list`` and ``python -m processing convert NAME SRC_DIR OUT_DIR``.

Importing this package is cheap (no ``datasets``, no torch): :data:`BENCHMARKS` imports every converter module of
:func:`_import_converters` the first time it is read, and the ``datasets``-backed names (``convert_benchmark``,
``UNIFIED_FEATURES``, ...) are imported on first use (PEP 562). A new converter module is added to the import list in
:func:`_import_converters` (the one list of converter modules).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .registry import BENCHMARKS, Benchmark, SourceFormatError, register


def _import_converters() -> None:
    """Import every converter module; each registers its benchmarks (order = `python -m processing list` order)."""
    from . import (  # noqa: F401
        ace,
        ade,
        aste,
        biomed,
        cadec,
        casie,
        conll03,
        conll04,
        conll2002,  # Spanish, Dutch (conll2002-es, conll2002-nl)
        crossner,
        glue,
        hyperred,
        mmie,
        nyt,
        pilener,
        scierc,
        semeval2010,
        squad,
        user_formats,  # users' own data: bio, spacy, labelstudio, gliner, brat
        webnlg,
        wnut17,
    )


BENCHMARKS.set_loader(_import_converters)

#: names imported on first use: their modules import ``datasets`` (``python -m processing list`` needs neither)
_LAZY = {
    "ConversionReport": "convert",
    "convert_benchmark": "convert",
    "load_unified": "convert",
    "write_unified": "convert",
    "UNIFIED_FEATURES": "features",
    "to_arrow_record": "features",
    "to_spec_record": "features",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        BENCHMARKS.load()  # `processing.conll04`: the converter submodules are attributes once imported
        if name in globals():
            return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover
    from .convert import ConversionReport, convert_benchmark, load_unified, write_unified
    from .features import UNIFIED_FEATURES, to_arrow_record, to_spec_record

__all__ = [
    "BENCHMARKS",
    "UNIFIED_FEATURES",
    "Benchmark",
    "ConversionReport",
    "SourceFormatError",
    "convert_benchmark",
    "load_unified",
    "register",
    "to_arrow_record",
    "to_spec_record",
    "write_unified",
]
