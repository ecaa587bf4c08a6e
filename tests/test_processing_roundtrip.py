"""Round trip of every real benchmark: converted records -> gold span graph -> decode == gold (``modeling_ldnet.roundtrip``).

Default run: a seeded sample of 500 records per split (the whole split when smaller); ``pytest -m full`` runs every
record. Pass criterion: exact rate >= 99.5 % and every miss in a named category (``MISS_CATEGORIES``).
"""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from modeling_ldnet import LDNetProcessor
from modeling_ldnet.roundtrip import MISS_CATEGORIES, roundtrip
from processing.roundtrip_table import read_records, real_benchmarks, sample

REAL = [
    "conll03", "conll04", "scierc", "nyt", "nyt-star", "sst2", "casie",
    "aste-14lap", "aste-pengb-14lap", "aste-14res", "aste-pengb-14res",
    "aste-15res", "aste-pengb-15res", "aste-16res", "aste-pengb-16res",
    "cadec", "twitter2015", "twitter2017", "mnre",
    # generalist pre-training mix and zero-shot targets (issue #23)
    "bionlp13cg", "bionlp13pc", "bionlp11id", "bc5cdr", "anatem", "bc2gm", "linnaeus", "ex_ptm", "bionlp13ge",
    "ncbi_disease", "wnut17", "webnlg", "ade", "semeval2010_task8", "pilener", "conll2002-es", "conll2002-nl",
]
SAMPLE = 500
SEED = 13


@pytest.fixture(scope="module")
def proc(minilm):
    return LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(minilm))


def check(rep, records, where: str) -> None:
    assert rep.records == len(records), where
    if rep.items == 0:  # e.g. the unlabeled SST-2 test split
        assert all(not any(r["ans"].values()) for r in records), where
    assert rep.rate >= 0.995 and set(rep.misses) <= set(MISS_CATEGORIES), (where, str(rep), rep.examples)


def test_every_real_benchmark_is_covered():
    assert sorted(real_benchmarks()) == sorted(REAL)


@pytest.mark.parametrize("name", REAL)
def test_roundtrip_sample(name, proc, shared_data):
    splits, _ = read_records(name, shared_data)
    assert splits, name
    for split, records in splits.items():
        picked = sample(records, SAMPLE, SEED)
        assert len(picked) == min(SAMPLE, len(records))
        check(roundtrip(proc, picked), picked, f"{name}/{split}")


@pytest.mark.full
@pytest.mark.parametrize("name", REAL)
def test_roundtrip_full(name, proc, shared_data):
    splits, _ = read_records(name, shared_data)
    for split, records in splits.items():
        check(roundtrip(proc, records), records, f"{name}/{split}")
