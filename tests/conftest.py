"""Shared fixtures: the packaged encoder, the staged data, and the one tiny-model factory (``tiny_ldnet``).

The tiny test kit itself (records, processors, models, pipeline helpers) is ``tests/ldnet_tiny.py``.
"""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import ldnet_tiny  # noqa: E402 - after the offline switches

from processing.paths import minilm_path, shared_data_dir  # noqa: E402, F401 - minilm_path: re-exported

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = shared_data_dir()


@pytest.fixture(autouse=True)
def _local_universal_ie():
    """A ``trust_remote_code`` pipeline registers the saved folder's copy of UniversalIEPipeline under
    ``universal-ie``; put this checkout's class back after every test so later tests get the local one."""
    yield
    module = sys.modules.get("modeling_ldnet.pipeline_ldnet")
    if module is not None:
        module.register_pipeline()


@pytest.fixture(scope="session")
def minilm() -> Path:
    return minilm_path()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        raise RuntimeError(f"real data expected at {SHARED_DATA} (set LDNET_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def tiny_ldnet():
    """The tiny random LDNet factory: ``tiny_ldnet(processor_or_vocab, seed=0, **config)`` (``ldnet_tiny.tiny_model``)."""
    return ldnet_tiny.tiny_model
