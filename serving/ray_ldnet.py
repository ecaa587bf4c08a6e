"""LDNet on a Ray cluster: a predictor class for ``ray.data.Dataset.map_batches`` (one model per actor).

    import ray
    from serving.ray_ldnet import LDNetPredictor

    ds = ray.data.read_parquet("s3://bucket/corpus/")
    out = ds.map_batches(
        LDNetPredictor,
        fn_constructor_kwargs={"model": "/shared/ldnet-model", "schema": {"ent": ["person", "location"]}},
        concurrency=8,            # actors, each holding one model
        num_gpus=1,               # per actor (omit on CPU)
        batch_size=256,           # rows per call; forward passes of `forward_batch_size` inside
        batch_format="pyarrow",
    )
    out.write_parquet("s3://bucket/extracted/")

or simply ``extract_dataset(ds, "/shared/ldnet-model", concurrency=8, schema=...)``. Rows come back with every input
column and the answers as a JSON string column (``ans``), exactly like ``ldnet-extract``'s parquet output; the columns
(text / schema / instruction / bg / id) and the defaults are the same options (:class:`serving.extract.ColumnSpec`).
Inference is ``pipeline("universal-ie")`` (same validation, windows, decoding).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from .extract import ColumnSpec, dump_answer, load_pipeline, run_records


class LDNetPredictor:
    """Callable class for ``map_batches``: loads the model once per actor, answers every row of each batch.

    Inside a batch the rows are sorted by length and run ``forward_batch_size`` at a time (one forward pass each),
    then put back in order. Accepts ``pyarrow.Table``, ``pandas.DataFrame`` and ``dict[str, np.ndarray]`` batches
    and returns the same kind with ``output_column`` added.
    """

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        schema: dict | None = None,
        instruction: str | None = None,
        text_column: str = "text",
        schema_column: str | None = "schema",
        instruction_column: str | None = "instruction",
        bg_column: str | None = "bg",
        id_column: str | None = "id",
        output_column: str = "ans",
        threshold: float | None = None,
        forward_batch_size: int = 16,
        device: str | None = None,
        dtype: str | None = None,
        torch_threads: int | None = None,
    ) -> None:
        if torch_threads:
            torch.set_num_threads(int(torch_threads))
        # Ray sets CUDA_VISIBLE_DEVICES for actors given num_gpus; otherwise this actor runs on CPU
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.ie = load_pipeline(model, device=device, dtype=dtype)
        self.columns = ColumnSpec(
            text_column=text_column, schema_column=schema_column, instruction_column=instruction_column,
            bg_column=bg_column, id_column=id_column, schema=schema, instruction=instruction,
            output_column=output_column,
        )
        self.threshold = threshold
        if forward_batch_size < 1:
            raise ValueError(f"forward_batch_size must be >= 1, got {forward_batch_size}")
        self.forward_batch_size = int(forward_batch_size)

    def answer_rows(self, rows: list[dict]) -> list[str]:
        """JSON answers for ``rows`` (dicts), in order."""
        order = sorted(range(len(rows)), key=lambda i: (-self.columns.length(rows[i]), i))
        answers: list[str] = [""] * len(rows)
        for s in range(0, len(order), self.forward_batch_size):
            chunk = order[s : s + self.forward_batch_size]
            # no global row number inside a Ray batch: errors name the id column's value, else the row in the batch
            records = [self.columns.to_record(rows[i], i) for i in chunk]
            for i, ans in zip(chunk, run_records(self.ie, records, self.threshold)):
                answers[i] = dump_answer(ans)
        return answers

    def __call__(self, batch: Any) -> Any:
        if isinstance(batch, pa.Table):
            self.columns.check_columns(batch.column_names, "ray batch")
            answers = self.answer_rows(batch.to_pylist())
            return batch.append_column(self.columns.output_column, pa.array(answers, type=pa.string()))
        if isinstance(batch, dict):
            self.columns.check_columns(list(batch), "ray batch")
            n = len(next(iter(batch.values()))) if batch else 0
            rows = [{k: _py(v[i]) for k, v in batch.items()} for i in range(n)]
            return {**batch, self.columns.output_column: np.array(self.answer_rows(rows), dtype=object)}
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas comes with Ray Data
            pd = None
        if pd is not None and isinstance(batch, pd.DataFrame):
            self.columns.check_columns(list(batch.columns), "ray batch")
            rows = [{k: _py(v) for k, v in r.items()} for r in batch.to_dict("records")]
            return batch.assign(**{self.columns.output_column: self.answer_rows(rows)})
        raise TypeError(f"LDNetPredictor: unsupported batch type {type(batch).__name__} (use batch_format='pyarrow')")


def _py(value: Any) -> Any:
    """numpy scalars / arrays, also nested in structs (numpy and pandas batches) → Python values."""
    if isinstance(value, np.ndarray):
        return [_py(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_py(v) for v in value]
    if isinstance(value, dict):
        return {k: _py(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def extract_dataset(
    ds: Any,
    model: str | os.PathLike,
    *,
    concurrency: int | tuple[int, int] = 1,
    batch_size: int = 256,
    num_gpus: float | None = None,
    num_cpus: float | None = None,
    **predictor_kwargs: Any,
) -> Any:
    """``ds.map_batches(LDNetPredictor, ...)`` with the usual settings; ``predictor_kwargs`` go to the predictor."""
    remote: dict[str, Any] = {}
    if num_gpus is not None:
        remote["num_gpus"] = num_gpus
    if num_cpus is not None:
        remote["num_cpus"] = num_cpus
    return ds.map_batches(
        LDNetPredictor,
        fn_constructor_kwargs={"model": str(model), **predictor_kwargs},
        concurrency=concurrency,
        batch_size=batch_size,
        batch_format="pyarrow",
        **remote,
    )


__all__ = ["LDNetPredictor", "extract_dataset"]
