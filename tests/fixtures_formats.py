"""Writers of small fixture files in the exact upstream formats of the converters (see each converter's docstring).

Every writer takes a folder, writes the files there and returns the folder. Tests compare the converted records
with hand-computed expectations, so the fixture contents below are deliberately small and fixed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ CoNLL-2003 (IOB1)

CONLL03_TRAIN = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
Paul NNP I-NP B-PER
met VBD I-VP O
in IN I-PP O
New NNP I-NP I-LOC
York NNP I-NP I-LOC

-DOCSTART- -X- O O

Nothing NN I-NP O
"""


def write_conll03(folder: Path, train: str = CONLL03_TRAIN) -> Path:
    _write(folder / "eng.train", train)
    _write(folder / "eng.testa", "-DOCSTART- -X- O O\n\nRome NNP I-NP I-LOC\n")
    return folder  # no eng.testb: the test split is reported missing


# ------------------------------------------------------------------------------------------------ SpERT / sincere

CONLL04_SENT = {
    "tokens": ["John", "Smith", "works", "for", "Acme", "Corp", "in", "Boston", "."],
    "entities": [
        {"type": "Peop", "start": 0, "end": 2},
        {"type": "Org", "start": 4, "end": 6},
        {"type": "Loc", "start": 7, "end": 8},
    ],
    "relations": [
        {"type": "Work_For", "head": 0, "tail": 1},
        {"type": "OrgBased_In", "head": 1, "tail": 2},
        {"type": "Work_For", "head": 0, "tail": 1},  # verbatim duplicate -> dropped
    ],
    "orig_id": 7,
}


def write_spert(folder: Path, name: str = "conll04.json", data: dict[str, Any] | None = None) -> Path:
    data = data if data is not None else {"train": [CONLL04_SENT], "dev": [], "test": []}
    _write(folder / name, json.dumps(data))
    return folder


ACE05_REL_SENT = {
    "tokens": ["The", "CEO", "of", "Apple", "visited", "Paris", "."],
    "entities": [
        {"type": "PER", "start": 1, "end": 2},
        {"type": "ORG", "start": 3, "end": 4},
        {"type": "GPE", "start": 5, "end": 6},
    ],
    "relations": [{"type": "ORG-AFF", "head": 0, "tail": 1}, {"type": "PHYS", "head": 0, "tail": 2}],
}


# ------------------------------------------------------------------------------------------------ DyGIE++ (SciERC)

SCIERC_DOC = {
    "doc_key": "X01-1001",
    "sentences": [["We", "propose", "a", "parser", "."], ["The", "parser", "uses", "neural", "networks", "."]],
    "ner": [[[3, 3, "Method"]], [[5, 6, "Method"], [8, 9, "Method"]]],
    "relations": [[], [[8, 9, 5, 6, "USED-FOR"], [8, 9, 5, 6, "USED-FOR"]]],
    "clusters": [[[3, 3], [5, 6]]],
}


def write_scierc(folder: Path, lines: list[str] | None = None) -> Path:
    lines = lines if lines is not None else [json.dumps(SCIERC_DOC)]
    _write(folder / "train.json", "\n".join(lines) + "\n")
    return folder


# ------------------------------------------------------------------------------------------------ NYT (CasRel/PRGC)

NYT_ITEMS = [
    {
        "text": "Mayor of New York visited New York Yankees fans in York , Medellin .",
        "triple_list": [
            ["New York", "/location/location/contains", "York"],
            ["New York", "/location/location/contains", "York"],  # duplicate -> dropped
            ["Colombia", "/location/location/contains", "Medellín"],  # Colombia not in text -> dropped
            ["New York Yankees", "/sports/sports_team/location", "New York"],
            ["York", "/location/neighborhood/neighborhood_of", "Medellín"],  # accent folding
        ],
    }
]


def write_nyt(folder: Path, items: list[dict[str, Any]] | None = None, raw: str | None = None) -> Path:
    _write(folder / "val_triples.json", raw if raw is not None else json.dumps(items or NYT_ITEMS, indent=4))
    return folder  # no train / test file


# ------------------------------------------------------------------------------------------------ GLUE TSV

MRPC_TRAIN = (
    "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    "1\t702876\t702977\tAmrozi accused his brother .\tReferring to him , Amrozi accused his brother .\n"
    "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought Dominick 's in 1995 .\n"
)
MRPC_TEST = "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t1089874\t1089925\tPCCW 's chief .\tCurrent chief .\n"
COLA_TRAIN = "gj04\t1\t\tOur friends won't buy this analysis .\ngj04\t0\t*\tOne more pseudo generalization .\n"
COLA_TEST = "index\tsentence\n0\tBill whistled past the house .\n"


def write_glue(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        _write(folder / name, text)
    return folder


# ------------------------------------------------------------------------------------------------ SQuAD JSON

SQUAD_V2 = {
    "version": "v2.0",
    "data": [
        {
            "title": "France",
            "paragraphs": [
                {
                    "context": "Paris is the capital of France . Paris is large .",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "What is the capital of France? ",
                            "answers": [
                                {"text": "Paris", "answer_start": 0},
                                {"text": "Paris", "answer_start": 0},
                                {"text": "Paris", "answer_start": 30},  # misaligned -> nearest = 33
                            ],
                            "is_impossible": False,
                        },
                        {
                            "id": "q2",
                            "question": "Who is the king?",
                            "answers": [],
                            "plausible_answers": [{"text": "Paris", "answer_start": 0}],
                            "is_impossible": True,
                        },
                        {
                            "id": "q3",
                            "question": "Which river?",
                            "answers": [{"text": "Seine", "answer_start": 5}],  # not in context -> dropped
                            "is_impossible": False,
                        },
                    ],
                }
            ],
        }
    ],
}


def write_squad(folder: Path, name: str = "dev-v2.0.json", data: Any = None, raw: str | None = None) -> Path:
    _write(folder / name, raw if raw is not None else json.dumps(data if data is not None else SQUAD_V2))
    return folder


# ------------------------------------------------------------------------------------------------ ACE formats

ACE_MRC_NER = [
    {
        "context": "the CEO of Apple Inc. visited Paris",
        "end_position": [4],
        "entity_label": "ORG",
        "impossible": False,
        "qas_id": "0.1",
        "query": "organization entities",
        "span_position": ["3;4"],
        "start_position": [3],
    },
    {
        "context": "the CEO of Apple Inc. visited Paris",
        "end_position": [4, 1],
        "entity_label": "PER",
        "impossible": False,
        "qas_id": "0.2",
        "query": "person entities",
        "span_position": ["1;4", "1;1"],
        "start_position": [1, 1],
    },
    {
        "context": "the CEO of Apple Inc. visited Paris",
        "end_position": [6],
        "entity_label": "GPE",
        "impossible": False,
        "qas_id": "0.3",
        "query": "gpe entities",
        "span_position": ["6;6"],
        "start_position": [6],
    },
    {
        "context": "nothing here",
        "end_position": [],
        "entity_label": "PER",
        "impossible": True,
        "qas_id": "1.2",
        "query": "person entities",
        "span_position": [],
        "start_position": [],
    },
]

ONEIE_SENT = {
    "doc_id": "AFP_ENG_1",
    "sent_id": "AFP_ENG_1-1",
    "tokens": ["Troops", "attacked", "the", "city", "and", "killed", "two", "civilians", "."],
    "entity_mentions": [
        {"id": "AFP_ENG_1-E1", "start": 0, "end": 1, "entity_type": "PER", "text": "Troops"},
        {"id": "AFP_ENG_1-E2", "start": 2, "end": 4, "entity_type": "GPE", "text": "the city"},
        {"id": "AFP_ENG_1-E3", "start": 6, "end": 8, "entity_type": "PER", "text": "two civilians"},
    ],
    "relation_mentions": [],
    "event_mentions": [
        {
            "id": "AFP_ENG_1-EV1",
            "event_type": "Conflict:Attack",
            "trigger": {"start": 1, "end": 2, "text": "attacked"},
            "arguments": [
                {"entity_id": "AFP_ENG_1-E1", "text": "Troops", "role": "Attacker"},
                {"entity_id": "AFP_ENG_1-E2", "text": "the city", "role": "Target"},
            ],
        },
        {
            "id": "AFP_ENG_1-EV2",
            "event_type": "Life:Die",
            "trigger": {"start": 5, "end": 6, "text": "killed"},
            "arguments": [
                {"entity_id": "AFP_ENG_1-E1", "text": "Troops", "role": "Agent"},
                {"entity_id": "AFP_ENG_1-E3", "text": "two civilians", "role": "Victim"},
                {"entity_id": "AFP_ENG_1-E9", "text": "?", "role": "Place"},  # unknown entity -> dropped
            ],
        },
    ],
}


def write_ace_mrc(folder: Path, items: list[dict[str, Any]] | None = None) -> Path:
    _write(folder / "mrc-ner.train", json.dumps(items if items is not None else ACE_MRC_NER))
    return folder


def write_oneie(folder: Path, lines: list[str] | None = None) -> Path:
    _write(folder / "train.oneie.json", "\n".join(lines if lines is not None else [json.dumps(ONEIE_SENT)]) + "\n")
    return folder


# ------------------------------------------------------------------------------------------------ CrossNER / MIT

CROSSNER_TRAIN = (
    "Labour\tB-politicalparty\nleader\tO\nKeir\tB-politician\nStarmer\tI-politician\nvisited\tO\n"
    "Wales\tB-country\n.\tO\n\nThe\tO\nelection\tI-election\nended\tO\n"
)
MIT_MOVIE_TRAIN = "B-ACTOR\tsteve\nI-ACTOR\tmcqueen\nO\tmovies\nB-YEAR\t1960s\n\nO\tany\nB-GENRE\tcomedy\n"


def write_crossner(folder: Path, train: str = CROSSNER_TRAIN, dev: str | None = None) -> Path:
    _write(folder / "train.txt", train)
    if dev is not None:
        _write(folder / "dev.txt", dev)
    return folder


# ------------------------------------------------------------------------------------------------ HyperRED

HYPERRED_SENT = {
    "tokens": ["Leonard", "Parker", "received", "his", "PhD", "from", "Harvard", "University", "in", "1967", "."],
    "entities": [{"span": [0, 2], "label": "Entity"}, {"span": [6, 8], "label": "Entity"}, {"span": [9, 10], "label": "Entity"}],
    "relations": [
        {"head": [0, 2], "tail": [6, 8], "label": "educated at",
         "qualifiers": [{"span": [9, 10], "label": "end time"}, {"span": [4, 5], "label": "academic degree"}]},
    ],
}
HYPERRED_SENT2 = {
    "tokens": ["Einstein", "won", "the", "Nobel", "Prize", "in", "1921", "."],
    "entities": [],
    "relations": [
        {"head": [0, 1], "tail": [3, 5], "label": "award received", "qualifiers": [{"span": [6, 7], "label": "point in time"}]},
        {"head": [0, 1], "tail": [3, 5], "label": "award received", "qualifiers": [{"span": [6, 7], "label": "point in time"}]},
    ],
}


def write_hyperred(folder: Path, train: list[str] | None = None, dev: list[str] | None = None) -> Path:
    _write(folder / "train.json", "\n".join(train if train is not None else [json.dumps(HYPERRED_SENT)]) + "\n")
    _write(folder / "dev.json", "\n".join(dev if dev is not None else [json.dumps(HYPERRED_SENT2)]) + "\n")
    return folder
