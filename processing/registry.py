"""The benchmark registry: ``processing.BENCHMARKS[name]`` -> :class:`Benchmark`.

A converter module defines one or more ``Benchmark`` objects and calls :func:`register` on each at import time.
``read_splits(src_dir, **options)`` returns ``{split_name: iterator of SPEC-form records}``; records are validated
and counted by the shared driver (``processing.convert``), never by the converter itself.
"""

from __future__ import annotations

from collections import UserDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Record = dict[str, Any]
SplitReader = Callable[..., dict[str, Iterator[Record]]]


@dataclass
class Benchmark:
    """One benchmark (or benchmark family member).

    Attributes:
        name: registry key, e.g. ``"conll04"``, ``"aste-14res"``.
        task: ``ner | re | ee | absa | discontinuous_ner | hyper_re | cls | mrc | mner | mre``.
        read_splits: ``read_splits(src_dir: Path, instruction: str, **options) -> {split: records}``.
        instruction: the default (paper-style) instruction; the CLI's ``--instruction`` overrides it.
        source: upstream repository/format the converter reads (cited in its docstring too).
        status: ``"real"`` (tested on ``shared/data``) or ``"fixture"`` (format-only test, data not staged).
        shared_subdir: folder under ``shared/data`` holding the real data (``None`` for fixture-only sets).
        how_to_obtain: for fixture-only sets, how a user gets the data.
        options: extra keyword options ``read_splits`` accepts (e.g. ``image_dir``), with their meaning.
    """

    name: str
    task: str
    read_splits: SplitReader
    instruction: str
    source: str
    status: str = "real"
    shared_subdir: str | None = None
    how_to_obtain: str = ""
    options: dict[str, str] = field(default_factory=dict)


class BenchmarkRegistry(UserDict):
    """``{name: Benchmark}`` that imports every converter module on first read, so ``import processing`` stays cheap
    while ``BENCHMARKS`` is complete whenever it is looked at.

    ``processing/__init__.py`` installs the loader (:meth:`set_loader`, its ``CONVERTERS`` list is the one source of
    the module names). Reads made while the loader runs (a converter looking at its siblings) see the benchmarks
    registered so far, as with eager imports.
    """

    def __init__(self) -> None:
        super().__init__()
        self._loader: Callable[[], None] | None = None

    def set_loader(self, loader: Callable[[], None]) -> None:
        self._loader = loader

    def load(self) -> None:
        """Run the loader once (imports the converter modules, which call :func:`register`)."""
        loader, self._loader = self._loader, None
        if loader is not None:
            try:
                loader()
            except BaseException:
                self._loader = loader  # a failed converter import is raised again on the next read
                raise

    def __getitem__(self, name: str) -> Benchmark:
        self.load()
        return self.data[name]

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self.data

    def __iter__(self) -> Iterator[str]:
        self.load()
        return iter(self.data)

    def __len__(self) -> int:
        self.load()
        return len(self.data)

    def __repr__(self) -> str:
        self.load()
        return repr(self.data)


BENCHMARKS: BenchmarkRegistry = BenchmarkRegistry()


def register(benchmark: Benchmark) -> Benchmark:
    # .data: registering must not trigger the loader (register runs while the converter modules are imported)
    if benchmark.name in BENCHMARKS.data:
        raise ValueError(f"benchmark {benchmark.name!r} registered twice")
    if benchmark.status not in ("real", "fixture"):
        raise ValueError(f"benchmark {benchmark.name!r}: status must be 'real' or 'fixture'")
    BENCHMARKS.data[benchmark.name] = benchmark
    return benchmark


class SourceFormatError(ValueError):
    """A malformed line in an upstream file; the message names the file and the 1-based line."""

    def __init__(self, path: str | Path, line: int, message: str) -> None:
        self.path, self.line = str(path), line
        super().__init__(f"{path}:{line}: {message}")
