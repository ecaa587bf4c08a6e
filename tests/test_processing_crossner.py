"""CrossNER / MIT Movie / MIT Restaurant converters (fixture only)."""

from __future__ import annotations

import pytest
from fixtures_formats import CROSSNER_TRAIN, MIT_MOVIE_TRAIN, write_crossner

from processing import convert_benchmark, to_spec_record
from processing.crossner import readable
from processing.registry import SourceFormatError

INST = "Please identify possible entities from the given text and determine their types."
POLITICS = ["country", "election", "event", "location", "organisation", "person", "political party", "politician",
            "miscellaneous"]


def test_crossner_fixture_exact(tmp_path):
    dev = "Paris\tB-location\nvoted\tO\nfor\tO\nthe\tO\nGreens\tB-greenparty\n"
    dd, rep = convert_benchmark("crossner-politics", write_crossner(tmp_path / "ner_data" / "politics", dev=dev),
                                progress=False)  # the parent folder works too (domain subfolder picked)
    dd2, _ = convert_benchmark("crossner-politics", tmp_path / "ner_data", progress=False)
    assert dd2["train"].to_list() == dd["train"].to_list()
    schema = {"ent": POLITICS + ["greenparty"]}  # unknown type found in the files: appended, sorted
    assert [to_spec_record(r) for r in dd["train"]] == [
        {"id": "crossner-politics.train.0", "instruction": INST, "schema": schema,
         "text": "Labour leader Keir Starmer visited Wales .", "bg": "",
         "ans": {"ent": [{"type": "political party", "text": "Labour", "span": [0, 6]},
                         {"type": "politician", "text": "Keir Starmer", "span": [14, 26]},
                         {"type": "country", "text": "Wales", "span": [35, 40]}]}},
        {"id": "crossner-politics.train.1", "instruction": INST, "schema": schema, "text": "The election ended",
         "bg": "", "ans": {"ent": [{"type": "election", "text": "election", "span": [4, 12]}]}},
    ]
    assert dd["dev"][0]["ans"]["ent"][-1] == {"type": "greenparty", "text": "Greens", "span": [20, 26]}
    assert rep.notes == {"train": {"I- tag without B- (treated as entity start)": 1}}
    assert set(rep.missing_splits) == {"test"}


def test_mit_movie_tag_first_detected(tmp_path):
    (tmp_path / "engtrain.bio").write_text(MIT_MOVIE_TRAIN)
    dd, rep = convert_benchmark("mit-movie", tmp_path, progress=False)
    rec = to_spec_record(dd["train"][0])
    assert rec == {
        "id": "mit-movie.train.0", "instruction": INST,
        "schema": {"ent": ["actor", "character", "director", "genre", "plot", "rating", "ratings average", "review",
                           "song", "title", "trailer", "year"]},
        "text": "steve mcqueen movies 1960s", "bg": "",
        "ans": {"ent": [{"type": "actor", "text": "steve mcqueen", "span": [0, 13]},
                        {"type": "year", "text": "1960s", "span": [21, 26]}]},
    }
    assert set(rep.missing_splits) == {"dev", "test"}
    # the same data in token<TAB>tag order gives the same records
    flipped = "\n".join("\t".join(reversed(ln.split("\t"))) if ln else "" for ln in MIT_MOVIE_TRAIN.split("\n"))
    write_crossner(tmp_path / "flip", flipped)
    dd2, _ = convert_benchmark("mit-movie", tmp_path / "flip", progress=False)
    assert dd2["train"].to_list() == dd["train"].to_list()


def test_readable_labels():
    assert readable("Restaurant_Name") == "restaurant name"
    assert readable("programlang") == "programming language"
    assert readable("misc") == "miscellaneous"


def test_malformed_lines(tmp_path):
    write_crossner(tmp_path, CROSSNER_TRAIN.replace("visited\tO", "visited\tO\textra"))
    with pytest.raises(SourceFormatError) as exc:
        convert_benchmark("crossner-politics", tmp_path, progress=False)
    assert exc.value.path == str(tmp_path / "train.txt") and exc.value.line == 5
    write_crossner(tmp_path, CROSSNER_TRAIN.replace("Wales\tB-country", "Wales\tB_country"))
    with pytest.raises(SourceFormatError, match=r"train\.txt:6: invalid tag 'B_country'"):
        convert_benchmark("crossner-politics", tmp_path, progress=False)
