"""ldnet-extract: formats, columns, length-sorted plan, resume after a kill, and 2 processes == 1 process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _scale import SCHEMA, corpus, read_jsonl, save_tiny_folder, write_jsonl
from ldnet_tiny import assert_same_answers

from serving.extract import ColumnSpec, extract_main, load_pipeline, make_plan

REPO = Path(__file__).resolve().parents[1]
N = 30
ARGS = ["--batch_size", "4", "--shard_size", "8", "--schema", json.dumps(SCHEMA), "--no_progress"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, minilm) -> Path:
    return save_tiny_folder(tmp_path_factory.mktemp("tiny") / "model", minilm)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return corpus(N)


@pytest.fixture(scope="module")
def jsonl_in(tmp_path_factory, rows) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("in") / "corpus.jsonl", rows)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, folder, jsonl_in) -> Path:
    """The single-process, uninterrupted output (jsonl)."""
    out = tmp_path_factory.mktemp("ref") / "out.jsonl"
    summary = extract_main(["--model", str(folder), "--input", str(jsonl_in), "--output", str(out), *ARGS])
    assert summary["finished"] and summary["records_computed"] == N and summary["num_shards"] == 4
    assert not out.with_name("out.jsonl.parts").exists(), "the work dir is removed after the merge"
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LDNET_NO_RELAUNCH"}
    return {**env, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}


def test_plan_is_length_sorted_and_independent_of_world_size():
    lengths = [5, 9, 9, 1, 7, 3, 9, 2, 8, 4]
    plan = make_plan(lengths, batch_size=2, shard_size=4)
    assert plan.order == [1, 2, 6, 8, 4, 0, 9, 5, 7, 3]  # longest first, ties in input order
    assert [list(plan.batches(k)) for k in range(plan.num_shards)] == [
        [[1, 2], [6, 8]], [[4, 0], [9, 5]], [[7, 3]]]
    assert plan.shards_for(0, 2) == [0, 2] and plan.shards_for(1, 2) == [1]
    assert sorted(i for k in range(plan.num_shards) for i in plan.shard(k)) == list(range(10))
    with pytest.raises(ValueError, match="multiple of --batch_size"):
        make_plan(lengths, batch_size=4, shard_size=6)


def test_output_keeps_rows_and_matches_the_pipeline(reference, rows, folder):
    out = read_jsonl(reference)
    assert [{k: v for k, v in r.items() if k != "ans"} for r in out] == rows  # input order, columns untouched
    ie = load_pipeline(folder)
    records = [ColumnSpec(schema=SCHEMA).to_record(r, i) for i, r in enumerate(rows)]
    assert records[2]["schema"] == SCHEMA and records[0]["schema"] == {"ent": ["person", "location"]}
    expected = [ie(r) for r in records]  # one record per forward: the same items, scores to float32 noise
    assert_same_answers([r["ans"] for r in out], expected)
    assert sum(len(a.get("ent", [])) + len(a.get("rel", [])) for a in expected) > N, "the tiny model predicts items"
    long_ids = [i for i, r in enumerate(rows) if len(r["text"]) > 300]
    assert long_ids and all(out[i]["ans"].get("ent") for i in long_ids), "long texts answered through the windows"


def test_formats_parquet_csv_datasets(tmp_path, reference, rows, folder):
    ref = [r["ans"] for r in read_jsonl(reference)]
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, tmp_path / "in.parquet")
    ds = datasets.Dataset.from_list([{**r, "schema": json.dumps(r.get("schema"))} for r in rows])
    ds.save_to_disk(tmp_path / "in_ds")
    csv_rows = [{"id": r["id"], "text": r["text"], "schema": json.dumps(r["schema"]) if "schema" in r else ""}
                for r in rows]
    import csv

    with open(tmp_path / "in.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "text", "schema"])
        w.writeheader()
        w.writerows(csv_rows)
    for name, src in (("pq", "in.parquet"), ("ds", "in_ds"), ("csv", "in.csv")):
        out = tmp_path / f"out_{name}.parquet"
        extract_main(["--model", str(folder), "--input", str(tmp_path / src), "--output", str(out), *ARGS])
        got = pq.read_table(out)
        assert got.column_names[-1] == "ans"
        assert [json.loads(a) for a in got.column("ans").to_pylist()] == ref, name  # same plan: bit-identical
        if name == "pq":  # every input column kept as it was (Arrow types included)
            assert got.drop_columns(["ans"]).equals(table)
        assert got.column("id").to_pylist() == [r["id"] for r in rows]


def test_column_options_and_errors(tmp_path, folder, rows):
    src = write_jsonl(tmp_path / "c.jsonl", [{"uid": r["id"], "body": r["text"]} for r in rows[:6]])
    out = tmp_path / "c.jsonl.out.jsonl"
    extract_main(["--model", str(folder), "--input", str(src), "--output", str(out), "--text_column", "body",
                  "--id_column", "uid", "--output_column", "pred", *ARGS])
    got = read_jsonl(out)
    assert [set(r) for r in got] == [{"uid", "body", "pred"}] * 6
    with pytest.raises(FileExistsError, match="--overwrite"):
        extract_main(["--model", str(folder), "--input", str(src), "--output", str(out), *ARGS])
    with pytest.raises(ValueError, match="no text column 'text'"):
        extract_main(["--model", str(folder), "--input", str(src), "--output", str(tmp_path / "x.jsonl"), *ARGS])
    gold = write_jsonl(tmp_path / "g.jsonl", [{"text": "a b", "ans": {}}])
    with pytest.raises(ValueError, match="already has a column 'ans'"):
        extract_main(["--model", str(folder), "--input", str(gold), "--output", str(tmp_path / "g.out.jsonl"), *ARGS])
    bad = write_jsonl(tmp_path / "b.jsonl", [{"id": "ok", "text": "a"}, {"id": "bad7", "text": "b", "schema": "{oops"}])
    with pytest.raises(ValueError, match=r"record 'bad7' \(row 1\), field 'schema': not JSON"):
        extract_main(["--model", str(folder), "--input", str(bad), "--output", str(tmp_path / "b.out.jsonl"), *ARGS])
    nots = write_jsonl(tmp_path / "n.jsonl", [{"id": "n1", "text": None}])
    with pytest.raises(ValueError, match=r"record 'n1' \(row 0\), field 'text': expected a string, got NoneType"):
        extract_main(["--model", str(folder), "--input", str(nots), "--output", str(tmp_path / "n.out.jsonl"), *ARGS])
    noschema = write_jsonl(tmp_path / "s.jsonl", [{"text": "a"}])
    with pytest.raises(ValueError, match="no --schema"):
        extract_main(["--model", str(folder), "--input", str(noschema), "--output", str(tmp_path / "s.out.jsonl"),
                      "--no_progress"])


def test_max_shards_then_continue(tmp_path, folder, jsonl_in, reference):
    out = tmp_path / "out.jsonl"
    argv = ["--model", str(folder), "--input", str(jsonl_in), "--output", str(out), *ARGS]
    first = extract_main([*argv, "--max_shards", "3"])
    assert not first["finished"] and first["records_computed"] == 24 and not out.exists()
    second = extract_main(argv)
    assert second["shards_skipped"] == 3 and second["records_computed"] == N - 24
    assert out.read_bytes() == reference.read_bytes()
    # a work dir of another run is refused, not mixed in
    work = tmp_path / "w"
    extract_main([*argv[:5], str(tmp_path / "o2.jsonl"), *ARGS, "--max_shards", "1", "--work_dir", str(work)])
    with pytest.raises(RuntimeError, match="different run .*threshold"):
        extract_main([*argv[:5], str(tmp_path / "o2.jsonl"), *ARGS, "--work_dir", str(work), "--threshold", "0.7"])


def test_kill_mid_run_then_resume(tmp_path, folder, jsonl_in, reference):
    """SIGKILL after two finished shards, in the middle of writing the third: the rerun skips the two, redoes the
    rest, and the output is byte-identical to an uninterrupted run (nothing lost, nothing duplicated)."""
    out = tmp_path / "out.jsonl"
    argv = ["--model", str(folder), "--input", str(jsonl_in), "--output", str(out), *ARGS]
    child = textwrap.dedent(
        f"""
        import os, signal, sys
        import serving.extract as ex
        real, n = ex._write_shard, [0]
        def write_then_die(work, k, indices, answers, rank):
            if n[0] == 2:  # a half-written shard, then a hard kill (no cleanup, no atexit)
                (work / f".shard-{{k:06d}}.rank{{rank}}.tmp").write_text(answers[0][:5])
                os.kill(os.getpid(), signal.SIGKILL)
            real(work, k, indices, answers, rank)
            n[0] += 1
        ex._write_shard = write_then_die
        ex.extract_main({argv!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], env=_env(), cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    work = tmp_path / "out.jsonl.parts"
    assert sorted(p.name for p in work.glob("shard-*")) == ["shard-000000.jsonl", "shard-000001.jsonl"]
    assert list(work.glob(".shard-*.tmp")) and not out.exists()
    summary = extract_main(argv)
    assert summary["shards_skipped"] == 2 and summary["records_computed"] == N - 16
    assert out.read_bytes() == reference.read_bytes()


def test_two_processes_match_one(tmp_path, folder, jsonl_in, reference):
    """accelerate launch --cpu --num_processes 2 (gloo): each rank takes every other shard; rank 0 merges."""
    out = tmp_path / "out.jsonl"
    cmd = [str(Path(sys.executable).with_name("accelerate")), "launch", "--cpu", "--num_processes", "2",
           "--main_process_port", str(_free_port()), "serving/extract.py",
           "--model", str(folder), "--input", str(jsonl_in), "--output", str(out), *ARGS, "--keep_shards"]
    proc = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=400, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert out.read_bytes() == reference.read_bytes()
    stats = [json.loads((tmp_path / "out.jsonl.parts" / f"stats-rank{r}.json").read_text()) for r in (0, 1)]
    assert [s["records"] for s in stats] == [16, 14]  # shards 0, 2 (8 + 8) and 1, 3 (8 + 6)


def test_gliner2_schema_and_answer_format(tmp_path, folder, jsonl_in):
    """A GLiNER2 schema dict in --schema, and --answer_format gliner2: the pipeline's GLiNER2 answers, row by row."""
    g2 = {"entities": {"person": "a human being", "location": None}}
    out = tmp_path / "g2.jsonl"
    argv = [a if a != json.dumps(SCHEMA) else json.dumps(g2) for a in ARGS]
    extract_main(["--model", str(folder), "--input", str(jsonl_in), "--output", str(out), *argv,
                  "--schema_column", "", "--answer_format", "gliner2"])
    ie = load_pipeline(folder)
    rows = read_jsonl(out)
    expected = ie([{"text": r["text"], "schema": g2} for r in rows], output_format="gliner2")
    assert [r["ans"] for r in rows] == json.loads(json.dumps(expected))
    assert any(r["ans"]["entities"]["person"] for r in rows), "the tiny model finds people"
