"""Ray Data: LDNetPredictor in map_batches on a local Ray instance (2 CPUs, 2 actors) == ldnet-extract."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _scale import SCHEMA, corpus, save_tiny_folder
from ldnet_tiny import assert_same_answers

from serving.extract import extract_main
from serving.ray_ldnet import LDNetPredictor, extract_dataset

ray = pytest.importorskip("ray")

N = 30


@pytest.fixture(scope="module")
def setup(tmp_path_factory, minilm):
    tmp = tmp_path_factory.mktemp("ray")
    folder = save_tiny_folder(tmp / "model", minilm)
    table = pa.Table.from_pylist(corpus(N))
    # a folder of parquet files (ldnet-extract and Ray both read the folder)
    (tmp / "in").mkdir()
    for k in range(3):
        pq.write_table(table.slice(10 * k, 10), tmp / "in" / f"part-{k}.parquet")
    out = tmp / "extract.parquet"
    extract_main(["--model", str(folder), "--input", str(tmp / "in"), "--output", str(out),
                  "--schema", json.dumps(SCHEMA), "--batch_size", "4", "--shard_size", "8", "--no_progress"])
    return tmp, folder, table, pq.read_table(out)


def test_predictor_batch_formats(setup):
    """In-process (no Ray): pyarrow, pandas and numpy batches give the same rows + answers as ldnet-extract."""
    _, folder, table, expected = setup
    assert expected.drop_columns(["ans"]).equals(table), "ldnet-extract read the parquet folder in file order"
    pred = LDNetPredictor(folder, schema=SCHEMA, forward_batch_size=4)
    got = pred(table.slice(0, 10))
    assert got.drop_columns(["ans"]).equals(table.slice(0, 10))
    ref = [json.loads(a) for a in expected.column("ans").to_pylist()[:10]]
    assert_same_answers([json.loads(a) for a in got.column("ans").to_pylist()], ref)
    df = pred(table.slice(0, 10).to_pandas())
    assert list(df["ans"]) == got.column("ans").to_pylist()
    np_batch = {"id": table.column("id").to_numpy()[:10], "text": table.column("text").to_numpy()[:10]}
    out = pred(np_batch)
    assert set(out) == {"id", "text", "ans"} and len(out["ans"]) == 10
    with pytest.raises(ValueError, match="no text column 'body'"):
        LDNetPredictor(folder, schema=SCHEMA, text_column="body")(table.slice(0, 2))


def test_map_batches_two_actors_matches_ldnet_extract(setup):
    tmp, folder, table, expected = setup
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}})
    try:
        ds = ray.data.read_parquet(str(tmp / "in")).repartition(3)  # 3 blocks: work for both actors
        out = extract_dataset(ds, folder, concurrency=2, batch_size=8, num_cpus=0.5, schema=SCHEMA,
                              forward_batch_size=4, torch_threads=1)
        out.write_parquet(str(tmp / "ray_out"))
    finally:
        ray.shutdown()
    got = pq.read_table(tmp / "ray_out")
    by_id = {r["id"]: r for r in got.to_pylist()}
    assert len(by_id) == N == got.num_rows  # nothing lost, nothing duplicated
    rows = [by_id[i] for i in expected.column("id").to_pylist()]
    assert pa.Table.from_pylist(rows, schema=expected.schema).drop_columns(["ans"]).equals(
        expected.drop_columns(["ans"]))
    # the same items; scores equal up to the 6th decimal (float32 sums differ with the batch's padding)
    assert_same_answers([json.loads(r["ans"]) for r in rows], [json.loads(a) for a in expected.column("ans").to_pylist()])
