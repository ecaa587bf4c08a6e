"""``processing``: converters from upstream benchmark formats to the unified record (SPEC §1).

    >>> from processing import BENCHMARKS, convert_benchmark, load_unified
    >>> dd, report = convert_benchmark("conll04", "shared/data/conll04", "out/conll04")
    >>> print(report.summary())
    >>> dd2 = load_unified("out/conll04")        # DatasetDict with UNIFIED_FEATURES

Command line: ``python -m processing list`` and ``python -m processing convert NAME SRC_DIR OUT_DIR``.
Importing this package imports every converter module, so :data:`BENCHMARKS` is complete.
"""

from __future__ import annotations

# converter modules register their benchmarks at import time (order = `python -m processing list` order)
from . import (  # noqa: F401
    ace,
    ade,
    aste,
    biomed,
    cadec,
    casie,
    conll03,
    conll04,
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
from .convert import ConversionReport, convert_benchmark, load_unified, write_unified
from .features import UNIFIED_FEATURES, to_arrow_record, to_spec_record
from .registry import BENCHMARKS, Benchmark, SourceFormatError, register

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
