"""Images of records -> ``pixel_values`` + ``image_mask`` for the optional vision fusion (``vision_ldnet``).

Images are file paths, PIL images, ``numpy`` arrays (transformed with the timm data config of the ViT) or pixel
tensors already of the model's ``input_size``. This file is shipped as remote code (imported by
``processing_ldnet``): only relative imports of the package; ``PIL`` and ``timm`` are imported lazily, so text-only
use never needs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .schema import RecordError

_NEEDS = "LDNetProcessor images need `pillow` and `timm`"


def no_image(img: Any) -> bool:
    """``None`` or ``""`` (never compares arrays/tensors elementwise)."""
    return img is None or (isinstance(img, (str, bytes)) and len(img) == 0)


def image_transform(image_config: dict[str, Any]) -> Callable[[Any], torch.Tensor]:
    """The timm evaluation transform (resize, crop, normalize) for ``image_config``."""
    try:  # inside try: the remote-code import check then does not demand timm from text-only checkpoints
        from timm.data import create_transform
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError(_NEEDS) from exc
    return create_transform(**image_config, is_training=False)


def load_images(
    records: Sequence[dict],
    images: Any,
    image_config: dict[str, Any] | None,
    transform: Callable[[], Callable[[Any], torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(pixel_values [n, *input_size], image_mask [n])`` for the records' ``image`` (or ``images``, one per
    record); ``None`` when no record has an image. ``transform()`` returns the (cached) image transform."""
    paths = [r.get("image") if isinstance(r, dict) else None for r in records]
    if images is None and all(no_image(p) for p in paths):
        return None
    if image_config is None:
        raise ValueError("records carry images but the processor has no image_config (text-only processor)")
    if images is not None and not isinstance(images, (list, tuple)):
        images = [images]
    if images is not None and len(images) != len(records):
        raise ValueError(f"got {len(images)} images for {len(records)} records")

    try:  # inside try: the remote-code import check then does not demand pillow from text-only checkpoints
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError(_NEEDS) from exc

    apply = transform()
    size = tuple(image_config["input_size"])
    pix = torch.zeros((len(records), *size))
    mask = torch.zeros(len(records), dtype=torch.bool)
    for i, rec in enumerate(records):
        img = images[i] if images is not None else paths[i]
        if no_image(img):
            continue
        if isinstance(img, (str, bytes)) or hasattr(img, "__fspath__"):
            if not os.path.isfile(img):
                rid = rec.get("id") if isinstance(rec, dict) else i
                raise RecordError(rid, "image", f"image file not found: {os.fsdecode(img)}")
            with Image.open(img) as opened:
                img = opened.convert("RGB")
        elif isinstance(img, np.ndarray):
            img = Image.fromarray(img)
        elif isinstance(img, torch.Tensor):
            if tuple(img.shape) != size:
                rid = rec.get("id") if isinstance(rec, dict) else i
                raise RecordError(rid, "image", f"pixel tensor of shape {tuple(img.shape)}, expected {size}")
            pix[i], mask[i] = img, True
            continue
        pix[i] = apply(img.convert("RGB"))
        mask[i] = True
    return pix, mask


def feature_images(
    imgs: tuple[torch.Tensor, torch.Tensor], sample_mapping: Any, stacked: bool
) -> dict[str, torch.Tensor | list]:
    """Each feature (window) gets its record's image: ``pixel_values`` / ``image_mask`` indexed by ``sample_mapping``
    (``overflow_to_sample_mapping``), as tensors when ``stacked`` (padded batch) else as per-feature lists."""
    pix, mask = imgs
    if stacked:
        idx = torch.tensor(sample_mapping.tolist())
        return {"pixel_values": pix[idx], "image_mask": mask[idx]}
    return {"pixel_values": [pix[m] for m in sample_mapping], "image_mask": [bool(mask[m]) for m in sample_mapping]}
