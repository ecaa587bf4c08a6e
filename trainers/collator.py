"""``LDNetDataCollator``: tokenized feature rows -> a padded training batch (optionally with teacher scores)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .data import input_hash
from .teacher import TEACHER_OK, TeacherScoreStore


@dataclass
class LDNetDataCollator:
    """Dynamic padding of LDNet features (rows of :func:`trainers.data.tokenize_dataset`).

    Output keys:

    * ``input_ids`` ``[B, L]`` (pad id of the tokenizer), ``attention_mask`` ``[B, L]``,
      ``label_drop_targets`` ``[B, L]`` float — padded by ``processor.pad``;
    * ``span_graph_links`` ``[n, 4]`` long: ``(feature, channel, i, j)`` for every gold link of the batch;
    * with a ``teacher_store``: ``teacher_logits`` ``[B, 3, L, L]`` float32 (zeros where absent or padded),
      ``teacher_mask`` ``[B]`` bool (feature has usable teacher scores) and ``teacher_status`` ``[B]`` long
      (``0`` ok, ``1`` missing key, ``2`` input-hash mismatch). Rows need ``teacher_key``.
    * ``pixel_values`` / ``image_mask`` are stacked when the rows carry them.
    """

    processor: Any
    teacher_store: TeacherScoreStore | None = None
    num_channels: int = 3
    extra_keys: tuple[str, ...] = field(default_factory=tuple)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        n = len(features)
        data = {
            "input_ids": [list(f["input_ids"]) for f in features],
            "attention_mask": [list(f.get("attention_mask") or [1] * len(f["input_ids"])) for f in features],
            "span_graph_links": [[tuple(int(v) for v in link) for link in (f.get("span_graph_links") or [])] for f in features],
            "label_drop_targets": [
                list(f["label_drop_targets"]) if f.get("label_drop_targets") is not None else [0.0] * len(f["input_ids"])
                for f in features
            ],
            "overflow_to_sample_mapping": list(range(n)),
        }
        padded = self.processor.pad(data)
        batch: dict[str, torch.Tensor] = {
            "input_ids": padded["input_ids"],
            "attention_mask": padded["attention_mask"],
            "span_graph_links": padded["span_graph_links"],
            "label_drop_targets": padded["label_drop_targets"],
        }
        if "pixel_values" in features[0]:
            batch["pixel_values"] = torch.stack([torch.as_tensor(f["pixel_values"]) for f in features])
            batch["image_mask"] = torch.tensor([bool(f.get("image_mask", True)) for f in features])
        for key in self.extra_keys:
            batch[key] = torch.as_tensor([f[key] for f in features])
        if self.teacher_store is not None:
            length = batch["input_ids"].shape[1]
            logits = torch.zeros(n, self.num_channels, length, length, dtype=torch.float32)
            mask = torch.zeros(n, dtype=torch.bool)
            status = torch.zeros(n, dtype=torch.long)
            for b, f in enumerate(features):
                key = f.get("teacher_key", f.get("record_id"))
                st, scores = self.teacher_store.lookup(str(key), f["input_ids"], input_hash(f["input_ids"]))
                status[b] = st
                if st == TEACHER_OK:
                    k = scores.shape[-1]
                    logits[b, :, :k, :k] = scores.float()
                    mask[b] = True
            batch["teacher_logits"] = logits
            batch["teacher_mask"] = mask
            batch["teacher_status"] = status
        return batch
