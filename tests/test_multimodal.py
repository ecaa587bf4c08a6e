"""Image fusion (paper eqs 3-8, SPEC §4.2) with a tiny timm ViT and synthetic images; processor image inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ldnet_tiny import (
    IMAGE_CONFIG,
    assert_same_answers,
    tiny_processor,
    tiny_vision_kwargs,
)
from ldnet_tiny import (
    decoding_model as tiny_model,
)
from PIL import Image
from safetensors.torch import save_file
from transformers import pipeline

from modeling_ldnet import LDNetModel, LDNetProcessor, RecordError
from modeling_ldnet.vision_ldnet import LDNetVisionFusion, vision_data_config

SCHEMA = {"ent": ["person", "location"], "rel": ["live in"]}


@pytest.fixture(scope="module")
def proc(minilm):
    return tiny_processor(minilm, image=True)


@pytest.fixture(scope="module")
def vocab(proc):
    return len(proc.tokenizer)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [(rng.random((40 + 3 * i, 50, 3)) * 255).astype("uint8") for i in range(3)]


def records(images):
    return [
        {"id": "a", "text": "Jerry Smith lives in New York .", "schema": SCHEMA, "image": Image.fromarray(images[0])},
        {"id": "b", "text": "Tom is here .", "schema": SCHEMA},
        {"id": "c", "text": "Anna moved to Rome last year with Bob .", "schema": SCHEMA,
         "image": Image.fromarray(images[1])},
    ]


def inputs(enc, pixels=True):
    keys = ("input_ids", "attention_mask") + (("pixel_values", "image_mask") if pixels else ())
    return {k: enc[k] for k in keys}


def text_only_twin(mm: LDNetModel, vocab: int) -> LDNetModel:
    """A text-only LDNet with the multimodal model's text weights."""
    cfg = mm.config.to_dict()
    text = tiny_model(vocab, max_length=cfg["max_seq_length"], window_stride=cfg["window_stride"])
    missing, unexpected = text.load_state_dict(mm.state_dict(), strict=False)
    assert not missing and unexpected and all(k.startswith("vision.") for k in unexpected)
    return text.eval()


@pytest.mark.parametrize("mode", ["paper", "code"])
def test_shapes(proc, vocab, images, mode):
    model = tiny_model(vocab, fusion_mode=mode, **tiny_vision_kwargs())
    assert isinstance(model.vision, LDNetVisionFusion)
    assert model.config.vision_hidden_size == 32
    enc = proc(records(images), return_tensors="pt")
    b, length = enc["input_ids"].shape
    assert enc["pixel_values"].shape == (b, 3, 32, 32) and enc["image_mask"].tolist() == [True, False, True]
    with torch.no_grad():
        hidden = model.plm(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        fused = model.vision(hidden, enc["attention_mask"], enc["pixel_values"])
        out = model(**inputs(enc))
    assert fused.shape == (b, length, 32) and fused.abs().max() <= 1.0  # tanh
    assert model.vision.image_features(enc["pixel_values"]).shape == (b, 5, 32)  # 4 patches + CLS
    assert out.logits.shape == (b, 3, length, length) and out.label_drop_probs.shape == (b, length)
    assert out.last_hidden_state.shape == (b, length, 32)
    if mode == "paper":
        assert model.vision.position_weight.shape == (64,) and model.vision.expand is None
    else:
        assert model.vision.expand.out_features == 64 * 32
    with pytest.raises(ValueError, match="max_seq_length"):
        model.vision(torch.zeros(1, 65, 32), None, enc["pixel_values"][:1])


def test_key_padding_mask(proc, vocab, images):
    """Pad tokens are never attended by the image queries (SPEC §8.15): their hidden states do not matter."""
    model = tiny_model(vocab, **tiny_vision_kwargs())
    enc = proc(records(images), return_tensors="pt")
    mask = enc["attention_mask"]
    assert (mask == 0).any()
    with torch.no_grad():
        hidden = model.plm(input_ids=enc["input_ids"], attention_mask=mask).last_hidden_state
        junk = torch.where(mask[..., None].bool(), hidden, torch.randn_like(hidden) * 100)
        a = model.vision(hidden, mask, enc["pixel_values"])
        b = model.vision(junk, mask, enc["pixel_values"])
        c = model.vision(junk, torch.ones_like(mask), enc["pixel_values"])
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a[1], c[1], atol=1e-3)


@pytest.mark.parametrize("freeze", [False, True])
def test_gradient_reaches_vit_only_when_trainable(proc, vocab, images, freeze):
    model = tiny_model(vocab, **tiny_vision_kwargs(freeze_vision=freeze))
    model.train()
    enc = proc(records(images), return_tensors="pt")
    out = model(**inputs(enc), span_graph_links=enc["span_graph_links"], label_drop_targets=enc["label_drop_targets"])
    out.loss.backward()
    vit_grads = [p.grad for p in model.vision.vit.parameters()]
    assert model.vision.mlp[0].weight.grad is not None and model.vision.mlp[0].weight.grad.abs().sum() > 0
    assert model.vision.query.weight.grad.abs().sum() > 0
    if freeze:
        assert all(g is None for g in vit_grads)
        assert not any(p.requires_grad for p in model.vision.vit.parameters())
        assert not model.vision.vit.training  # the frozen ViT stays in eval mode
    else:
        assert all(g is not None for g in vit_grads)
        assert model.vision.vit.patch_embed.proj.weight.grad.abs().sum() > 0
        assert model.vision.vit.training


def test_alpha_zero_equals_text_only(proc, vocab, images):
    mm = tiny_model(vocab, **tiny_vision_kwargs(fusion_alpha=0.0))
    text = text_only_twin(mm, vocab)
    enc = proc(records(images), return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(mm(**inputs(enc)).logits, text(**inputs(enc, pixels=False)).logits)


def test_records_without_image_equal_text_only(proc, vocab, images):
    mm = tiny_model(vocab, **tiny_vision_kwargs(fusion_alpha=0.5))
    text = text_only_twin(mm, vocab)
    enc = proc(records(images), return_tensors="pt")
    with torch.no_grad():
        fused = mm(**inputs(enc))
        plain = text(**inputs(enc, pixels=False))
    assert torch.equal(fused.logits[1], plain.logits[1])  # record "b" has no image
    assert not torch.allclose(fused.logits[0], plain.logits[0])  # records with an image are changed
    assert not torch.allclose(fused.logits[2], plain.logits[2])
    # a batch where no record has an image carries no pixel_values at all: the text-only path
    enc_t = proc([records(images)[1]], return_tensors="pt")
    assert "pixel_values" not in enc_t
    with torch.no_grad():
        assert torch.equal(mm(**inputs(enc_t, pixels=False)).logits, text(**inputs(enc_t, pixels=False)).logits)


def test_vision_weights_file_and_save_load(proc, vocab, images, tmp_path):
    donor = tiny_model(vocab, seed=1, **tiny_vision_kwargs())
    weights = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in donor.vision.vit.state_dict().items()}, str(weights))
    model = tiny_model(vocab, seed=2, **tiny_vision_kwargs(vision_weights_path=str(weights)))
    for k, v in donor.vision.vit.state_dict().items():  # loaded, and not re-initialised by post_init
        assert torch.equal(model.vision.vit.state_dict()[k], v), k
    enc = proc(records(images), return_tensors="pt")
    with torch.no_grad():
        before = model(**inputs(enc)).logits
    model.save_pretrained(tmp_path / "mm")
    weights.unlink()  # the folder must not depend on the original ViT file
    loaded = LDNetModel.from_pretrained(tmp_path / "mm").eval()
    assert loaded.config.vision_model_name == "vit_tiny_patch16_224" and loaded.config.freeze_vision
    assert not any(p.requires_grad for p in loaded.vision.vit.parameters())
    with torch.no_grad():
        assert torch.equal(loaded(**inputs(enc)).logits, before)
    with pytest.raises(FileNotFoundError, match="vision_weights_path"):
        tiny_model(vocab, **tiny_vision_kwargs(vision_weights_path=str(weights)))


def test_processor_image_inputs(proc, images, tmp_path):
    from timm.data import create_transform

    transform = create_transform(**IMAGE_CONFIG, is_training=False)
    pil = Image.fromarray(images[2])
    path = tmp_path / "img.png"
    pil.save(path)
    expected = transform(pil.convert("RGB"))
    base = {"text": "Tom is here .", "schema": {"ent": ["person"]}}
    as_path = proc([{**base, "id": 1, "image": str(path)}], return_tensors="pt")
    as_pil = proc([{**base, "id": 1, "image": pil}], return_tensors="pt")
    as_array = proc(text=["Tom is here ."], schema={"ent": ["person"]}, images=[images[2]], return_tensors="pt")
    as_tensor = proc([{**base, "id": 1, "image": expected}], return_tensors="pt")
    for enc in (as_path, as_pil, as_array, as_tensor):
        assert torch.allclose(enc["pixel_values"][0], expected, atol=1e-6)
        assert enc["image_mask"].tolist() == [True]
    listed = proc(text=["Tom is here .", "Ann ."], schema={"ent": ["person"]}, images=[images[2], None])
    assert listed["image_mask"] == [True, False] and torch.equal(listed["pixel_values"][1], torch.zeros(3, 32, 32))
    # windows of one record share its image
    long = proc(text=[" ".join(["word"] * 120)], schema={"ent": ["person"]}, images=[pil], return_tensors="pt")
    assert long["input_ids"].shape[0] > 1 and long["image_mask"].all()
    # timm's data config of the model's ViT (input_size follows img_size) round-trips through save/load
    model = tiny_model(len(proc.tokenizer), **tiny_vision_kwargs())
    assert vision_data_config(model)["input_size"] == [3, 32, 32]
    proc.save_pretrained(tmp_path / "proc")
    again = LDNetProcessor.from_pretrained(tmp_path / "proc")
    assert again.image_config == proc.image_config
    assert torch.equal(again(text=["Tom is here ."], schema={"ent": ["person"]}, images=[pil],
                             return_tensors="pt")["pixel_values"], as_pil["pixel_values"])


def test_image_errors(proc, minilm, tmp_path):
    with pytest.raises(RecordError, match=r"record 'rec-17'.*image.*missing\.png"):
        proc([{"id": "rec-17", "text": "Tom .", "schema": {"ent": ["person"]}, "image": str(tmp_path / "missing.png")}])
    with pytest.raises(RecordError, match="expected"):
        proc([{"id": "t", "text": "Tom .", "schema": {"ent": ["person"]}, "image": torch.zeros(3, 8, 8)}])
    text_proc = tiny_processor(minilm)
    with pytest.raises(ValueError, match="image_config"):
        text_proc(text=["Tom ."], schema={"ent": ["person"]}, images=[np.zeros((8, 8, 3), "uint8")])


def test_pipeline_with_images(proc, vocab, images):
    model = tiny_model(vocab, **tiny_vision_kwargs())
    ie = pipeline("universal-ie", model=model, processor=proc, device="cpu")
    recs = records(images)
    out = ie(recs, batch_size=2)
    assert len(out) == 3 and all(isinstance(o, dict) for o in out)
    # the text form with images= gives the same as the records
    texts = [r["text"] for r in recs]
    same = ie(texts, schema=SCHEMA, images=[images[0], None, images[1]], batch_size=3)
    assert_same_answers(same, out)
    # without its image, record "a" gets the text-only answer of the same weights
    text_ie = pipeline("universal-ie", model=text_only_twin(model, vocab), processor=proc, device="cpu")
    assert_same_answers(ie(texts[1], schema=SCHEMA), text_ie(texts[1], schema=SCHEMA))
