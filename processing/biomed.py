"""Biomedical NER (Crichton et al. 2017 MTL-Bioinformatics-2016 collection, 10 corpora) -> unified NER records.

Source format (``shared/data/biomed/SOURCE.md``; cambridgeltl/MTL-Bioinformatics-2016 @ df0df02f
``data/<SET>-IOB/{train,devel,test}.tsv``): one token a line, ``token<TAB>tag``, tags BIO (IOB2), an empty line
between sentences, no ``-DOCSTART-``, no document boundaries. Splits: train = ``train.tsv``, dev = ``devel.tsv``,
test = ``test.tsv``.

One benchmark per corpus (:data:`SETS`): ``bionlp13cg``, ``bionlp13pc``, ``bionlp11id``, ``bc5cdr``, ``anatem``,
``bc2gm``, ``linnaeus``, ``ex_ptm``, ``bionlp13ge`` (the 9 sets of the pre-training mix) and ``ncbi_disease``
(**held-out zero-shot target**: never put any of its splits into a training mix).

Labels are verbalised once, here, with an explicit table per corpus (:data:`LABELS`; upstream spelling -> natural
language, e.g. ``Gene_or_gene_product -> gene or gene product``, ``GENE -> gene``, ``Regulon-operon -> regulon or
operon``, BioNLP13PC's ``Complex -> protein complex``, the PC task's name for it). A tag type missing from its
corpus's table raises :class:`SourceFormatError` naming file and line. ``schema.ent`` = the corpus's labels in table
order. Unified record: ``text`` = tokens joined by single spaces (char offsets exact), id ``<name>.<split>.<n>``
(``n`` counts sentences from 0).

Shared with ``processing.wnut17``: :func:`read_bio_tsv`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import NER_INSTRUCTION

from .conll03 import decode_tags, iter_blocks
from .convert import ConversionReport, TokenText, register_split_files, unified_record
from .registry import SourceFormatError

SPLIT_FILES = {"train": "train.tsv", "dev": "devel.tsv", "test": "test.tsv"}

#: benchmark name -> upstream folder under ``shared/data/biomed``
SETS = {
    "bionlp13cg": "BioNLP13CG-IOB",
    "bionlp13pc": "BioNLP13PC-IOB",
    "bionlp11id": "BioNLP11ID-IOB",
    "bc5cdr": "BC5CDR-IOB",
    "anatem": "AnatEM-IOB",
    "bc2gm": "BC2GM-IOB",
    "linnaeus": "linnaeus-IOB",
    "ex_ptm": "Ex-PTM-IOB",
    "bionlp13ge": "BioNLP13GE-IOB",
    "ncbi_disease": "NCBI-disease-IOB",
}

#: the held-out zero-shot target (INDEX.md): not part of the pre-training mix
HELD_OUT = ("ncbi_disease",)

#: per corpus: upstream tag type -> natural-language label (every type of the staged files, checked by the tests)
LABELS: dict[str, dict[str, str]] = {
    "bionlp13cg": {
        "Amino_acid": "amino acid",
        "Anatomical_system": "anatomical system",
        "Cancer": "cancer",
        "Cell": "cell",
        "Cellular_component": "cellular component",
        "Developing_anatomical_structure": "developing anatomical structure",
        "Gene_or_gene_product": "gene or gene product",
        "Immaterial_anatomical_entity": "immaterial anatomical entity",
        "Multi-tissue_structure": "multi-tissue structure",
        "Organ": "organ",
        "Organism": "organism",
        "Organism_subdivision": "organism subdivision",
        "Organism_substance": "organism substance",
        "Pathological_formation": "pathological formation",
        "Simple_chemical": "simple chemical",
        "Tissue": "tissue",
    },
    "bionlp13pc": {
        "Cellular_component": "cellular component",
        "Complex": "protein complex",
        "Gene_or_gene_product": "gene or gene product",
        "Simple_chemical": "simple chemical",
    },
    "bionlp11id": {
        "Chemical": "chemical",
        "Organism": "organism",
        "Protein": "protein",
        "Regulon-operon": "regulon or operon",
    },
    "bc5cdr": {"Chemical": "chemical", "Disease": "disease"},
    "anatem": {"Anatomy": "anatomy"},
    "bc2gm": {"GENE": "gene"},
    "linnaeus": {"Species": "species"},
    "ex_ptm": {"Protein": "protein"},
    "bionlp13ge": {"Protein": "protein"},
    "ncbi_disease": {"Disease": "disease"},
}
assert set(LABELS) == set(SETS)


def read_bio_tsv(path: Path, dataset: str, split: str, instruction: str, labels: dict[str, str],
                 report: ConversionReport) -> Iterator[dict[str, Any]]:
    """Records of a ``token<TAB>tag`` BIO file (a line empty after ``strip()`` ends a sentence).

    ``labels`` maps every tag type to its label (its values, in order, are ``schema.ent``); a type not in it, a
    line without exactly two tab-separated columns or a tag that is not ``O`` / ``B-X`` / ``I-X`` raises
    :class:`SourceFormatError` naming the file and line.
    """
    schema = list(labels.values())
    for n, block in enumerate(iter_blocks(path, sep="\t", ncols=2)):
        lines = [ln for ln, _ in block]
        tt = TokenText([cols[0] for _, cols in block])
        ents = []
        for s, e, typ in decode_tags([cols[1] for _, cols in block], "iob2", path, lines, report, split):
            if typ not in labels:
                raise SourceFormatError(path, lines[s], f"unknown entity type {typ!r}; expected {sorted(labels)}")
            ents.append({"type": labels[typ], **tt.mention(s, e)})
        yield unified_record(f"{dataset}.{split}.{n}", instruction, {"ent": schema}, tt.text, {"ent": ents})


def _reader(name: str):
    def read(path: Path, split: str, instruction: str, report: ConversionReport) -> Iterator[dict[str, Any]]:
        return read_bio_tsv(path, name, split, instruction, LABELS[name], report)

    return read


for _name, _folder in SETS.items():
    register_split_files(
        _name, "ner", SPLIT_FILES, _reader(_name), NER_INSTRUCTION,
        f"MTL-Bioinformatics-2016 data/{_folder}/{{train,devel,test}}.tsv (BIO, token<TAB>tag), "
        f"cambridgeltl/MTL-Bioinformatics-2016 @ df0df02f" + (" [held-out zero-shot target]" if _name in HELD_OUT
                                                            else ""),
        shared_subdir=f"biomed/{_folder}",
    )
