"""The processor module keeps encoding and windows only (issue #18): its helpers live in their own remote-code
modules, a saved processor folder carries them, and text-only use never imports timm."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from transformers import AutoTokenizer

import modeling_ldnet.processing_ldnet as processing_ldnet
from modeling_ldnet import LDNetProcessor, encoding_ldnet

PACKAGE = Path(processing_ldnet.__file__).parent
SPLIT_MODULES = {"encoding_ldnet.py", "schema_groups_ldnet.py", "image_processing_ldnet.py"}


def test_processing_module_stays_small_and_reexports():
    assert len((PACKAGE / "processing_ldnet.py").read_text().splitlines()) <= 450
    # the names callers import from processing_ldnet are the encoding module's own objects
    for name in ("FeatureMeta", "EncodingReport", "GoldItem", "UNENCODABLE_REASONS", "MIN_WINDOW_STEP_FRACTION"):
        assert getattr(processing_ldnet, name) is getattr(encoding_ldnet, name), name


def test_saved_processor_carries_split_modules(minilm, tmp_path):
    LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(minilm)).save_pretrained(tmp_path)
    saved = {p.name for p in tmp_path.glob("*.py")}
    assert SPLIT_MODULES | {"processing_ldnet.py"} <= saved, SPLIT_MODULES - saved


def test_text_only_encoding_never_imports_timm(minilm):
    code = f"""
import sys
from transformers import AutoTokenizer
from modeling_ldnet import LDNetProcessor
p = LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained({str(minilm)!r}), max_length=24, window_stride=2)
enc = p({{"id": 1, "text": "alice met bob in paris " * 9, "schema": {{"ent": [f"kind {{i}}" for i in range(9)]}}}})
assert enc["encoding_report"].split_records == 1, enc["encoding_report"]
assert "timm" not in sys.modules
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
