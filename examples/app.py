#!/usr/bin/env python
"""A Gradio demo for an LDNet model (what a Hugging Face Space would run): ``make app``, or

    python examples/app.py --model runs/demo/model [--port 7860] [--backend torch|onnx|onnx-int8]

Type a text, edit the schema (entity types, relation types, event types with their roles), move the threshold, and
see the entities highlighted in the text (type and score) and the relations / events in a table. The schema editor
starts with the labels recorded on the model card (what the model was trained on). A model trained on one label set
does not read new label names reliably (the `make demo` model, asked for ``person, city, company``, calls John Smith
a ``company``), so the app shows a warning whenever the schema asks for labels the model never saw: the pipeline's
own ``last_report.unseen_labels`` when it reports them, else computed from ``config.trained_labels`` (or, for models
saved before that field, the card's schema). The examples are CoNLL04 test sentences (from the staged data,
``$LDNET_SHARED_DATA``) when available. Runs ``pipeline("universal-ie")`` (:func:`serving.backends.load_pipeline`)
in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home

REPO = Path(__file__).resolve().parents[1]
try:
    import serving  # noqa: F401
except ImportError:  # pragma: no cover - a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

from modeling_ldnet.modelcard_ldnet import collect_schema  # noqa: E402
from modeling_ldnet.schema import schema_labels  # noqa: E402
from serving.backends import BACKENDS, load_pipeline  # noqa: E402

#: CoNLL04's label inventory as the converter writes it (the `make demo` model is trained on it)
CONLL04_SCHEMA: dict[str, Any] = {
    "ent": ["people", "location", "organization", "other"],
    "rel": ["kill", "live in", "located in", "organization in", "work for"],
}
FALLBACK_EXAMPLES = [
    "John Wilkes Booth , who assassinated President Lincoln , was an actor .",
    "Jerry Smith lives in New York and works for Acme Corp .",
    "Bill Gates , the founder of Microsoft , was born in Seattle .",
]


TASKS = {"cls", "ent", "discontinuous_ent", "rel", "hyper_rel", "event", "span"}


def card_schema(card: dict[str, Any]) -> dict[str, Any] | None:
    """The schema recorded on the model card (``{"ent": ..}``, or ``{dataset: {"ent": ..}}`` merged into one), or
    None when the card records none."""
    schema = card.get("schema") or {}
    if schema and not set(schema) <= TASKS:
        schema = collect_schema(v for v in schema.values() if isinstance(v, dict))
    return dict(schema) if schema else None


def trained_schema(card: dict[str, Any]) -> dict[str, Any]:
    """What the schema editor starts with: the card's schema (:func:`card_schema`), else CoNLL04's."""
    return card_schema(card) or dict(CONLL04_SCHEMA)


def known_labels(config: Any, card: dict[str, Any]) -> tuple[dict[str, set[str]] | None, str]:
    """``({task: labels the model saw}, where that came from)``, or ``(None, reason)`` when there is nothing to warn
    about: ``config.trained_labels`` (recorded by ``LDNetTrainer``) when the attribute exists, else the card's schema
    (models saved before that field); a ``generalist`` model is meant for new labels."""
    if getattr(config, "generalist", False):
        return None, "a generalist model (config.generalist): meant for labels it never saw"
    trained = getattr(config, "trained_labels", None)
    if trained is not None:
        return {t: set(v) for t, v in trained.items()}, "config.trained_labels"
    schema = card_schema(card)
    if schema:
        return {t: set(v) for t, v in schema_labels(schema).items()}, "the model card's schema"
    return None, "the model records no training labels (no config.trained_labels, no schema on its card)"


def unseen_labels(schema: dict[str, Any], known: dict[str, set[str]] | None) -> dict[str, list[str]]:
    """``{task: [labels]}`` of ``schema`` the model never saw (an event's roles count as ``event`` labels, as in the
    pipeline's own check); ``{}`` when ``known`` is None."""
    if known is None:
        return {}
    out = {}
    for task, labels in schema_labels(schema).items():
        new = [x for x in labels if x not in known.get(task, ())]
        if new:
            out[task] = new
    return out


def report_unseen(ie: Any) -> dict[str, list[str]] | None:
    """The pipeline's own ``unseen labels`` of its latest call (``last_report.unseen_labels``), None when this
    pipeline does not report them."""
    report = getattr(ie, "last_report", None)
    unseen = getattr(report, "unseen_labels", None)
    return None if unseen is None else {t: list(v) for t, v in unseen.items() if v}


def unseen_warning(unseen: dict[str, list[str]], known: dict[str, set[str]] | None, source: str) -> str:
    """Markdown for the warning box ("" when every label was seen in training)."""
    if not unseen:
        return ""
    asked = "; ".join(f"{t}: {', '.join(f'`{x}`' for x in labels)}" for t, labels in unseen.items())
    trained = "; ".join(f"{t}: {', '.join(sorted(v))}" for t, v in sorted((known or {}).items()) if v)
    return (
        f"⚠️ **Labels this model never saw in training** — {asked}.  \n"
        f"It was trained on {trained or '?'} ({source}). A model trained on a fixed label set does not read new "
        "label names reliably: it tends to find its own types and give them one of the new names (e.g. a person "
        "labelled `company`). Use the trained labels, or fine-tune on yours (`ldnet-train`)."
    )


def starts_without_instruction(card: dict[str, Any], flag: bool = False) -> bool:
    """Tick "no instruction" at start: ``--no-instruction``, or a card that records ``"instruction": ""``."""
    return bool(flag) or card.get("instruction") == ""


def example_texts(n: int = 4) -> list[str]:
    """Short CoNLL04 test sentences with relations (staged data), else built-in sentences."""
    try:
        from processing import convert_benchmark
        from processing.paths import shared_data_dir

        src = shared_data_dir() / "conll04"
        if not src.is_dir():
            return FALLBACK_EXAMPLES
        dd, _ = convert_benchmark("conll04", src, progress=False, with_entities=True)
        texts = [r["text"] for r in dd["test"] if r["ans"]["rel"] and 50 <= len(r["text"]) <= 140]
        return texts[:n] or FALLBACK_EXAMPLES
    except Exception as exc:  # noqa: BLE001 - examples are a convenience; the app works without them
        print(f"app: no CoNLL04 examples ({exc}); using built-in sentences", file=sys.stderr)
        return FALLBACK_EXAMPLES


def parse_labels(value: str) -> list[str]:
    return [x.strip() for x in (value or "").replace("\n", ",").split(",") if x.strip()]


def parse_events(value: str) -> dict[str, list[str]]:
    """``"attack: attacker, target"`` lines -> ``{"attack": ["attacker", "target"]}``."""
    import gradio as gr
    events: dict[str, list[str]] = {}
    for i, line in enumerate((value or "").splitlines(), 1):
        if not line.strip():
            continue
        name, sep, roles = line.partition(":")
        if not name.strip():
            raise gr.Error(f"event types, line {i}: expected `type: role, role`, got {line!r}")
        events[name.strip()] = parse_labels(roles) if sep else []
    return events


def format_events(events: dict[str, list[str]]) -> str:
    return "\n".join(f"{k}: {', '.join(v)}" for k, v in (events or {}).items())


def highlight(text: str, ents: list[dict]) -> dict[str, Any]:
    """Non-overlapping highlights for ``gr.HighlightedText`` (higher scores win overlaps; all are in the table)."""
    chosen: list[dict] = []
    for e in sorted(ents, key=lambda e: (-e.get("score", 1.0), e["span"][0])):
        s, t = e["span"]
        if all(t <= c["start"] or s >= c["end"] for c in chosen):
            label = f"{e['type']} {e['score']:.2f}" if "score" in e else e["type"]
            chosen.append({"entity": label, "start": s, "end": t})
    return {"text": text, "entities": sorted(chosen, key=lambda c: c["start"])}


def structure_rows(ans: dict[str, Any]) -> list[list[Any]]:
    """Relations, events and the rest as ``[kind, type, arguments, score]`` rows."""
    rows: list[list[Any]] = []
    for r in ans.get("rel", []):
        rows.append(["relation", r["relation"], f"{r['head']['text']} → {r['tail']['text']}", r.get("score")])
    for r in ans.get("hyper_rel", []):
        quals = "; ".join(f"{q.get('label', q.get('role', '?'))}: {q.get('text', '')}" for q in r.get("qualifiers", []))
        rows.append(["n-ary relation", r.get("relation", "?"), f"{r['head']['text']} → {r['tail']['text']} "
                     f"[{quals}]", r.get("score")])
    for ev in ans.get("event", []):
        args = "; ".join(f"{a['role']}: {a['text']}" for a in ev.get("args", []))
        rows.append(["event", ev["event_type"], f"trigger {ev['trigger']['text']!r}; {args}", ev.get("score")])
    for c in ans.get("cls", []):
        rows.append(["class", c if isinstance(c, str) else c.get("label", "?"), "", None if isinstance(c, str)
                     else c.get("score")])
    return rows


def build_demo(ie: Any, examples: list[str] | None = None, no_instruction: bool = False) -> Any:
    """The ``gr.Blocks`` app around ``ie`` (gradio is imported here: the helpers above stay light for tests)."""
    import gradio as gr

    from serving.server import model_info

    name, card, config_rows = model_info(ie)
    schema = trained_schema(card)
    known, source = known_labels(ie.model.config, card)
    lock = threading.Lock()  # one pipeline, one call at a time (Gradio serves events from a thread pool)
    threshold = float(ie.processor.threshold)

    def editor_schema(ents: str, rels: str, events: str) -> dict[str, Any]:
        return {k: v for k, v in (("ent", parse_labels(ents)), ("rel", parse_labels(rels)),
                                  ("event", parse_events(events))) if v}

    def check_labels(ents: str, rels: str, events: str) -> str:
        # shown while the schema is edited, before any extraction
        return unseen_warning(unseen_labels(editor_schema(ents, rels, events), known), known, source)

    def extract(text: str, ents: str, rels: str, events: str, thr: float, skip_inst: bool):
        sch = editor_schema(ents, rels, events)
        if not (text or "").strip():
            raise gr.Error("type a text first")
        if not sch:
            raise gr.Error("the schema is empty: give at least one entity, relation or event type")
        with lock:
            ans = ie(text, schema=sch, threshold=float(thr), instruction="" if skip_inst else None)
            unseen = report_unseen(ie)  # the pipeline's own warning when it has one (same thread, under the lock)
        if unseen is None:
            unseen = unseen_labels(sch, known)
        ent_rows = [[e["type"], e["text"], f"{e['span'][0]}-{e['span'][1]}", e.get("score")]
                    for e in ans.get("ent", [])]
        warning = unseen_warning(unseen, known, source)
        return highlight(text, ans.get("ent", [])), structure_rows(ans), ent_rows, ans, warning

    metrics = card.get("metrics") or {}
    if known is None:
        about = f"It cannot say which labels it was trained on ({source}), so no warning is shown for new ones."
    else:
        about = ("It extracts the labels it was trained on; the schema below starts with "
                 + ("those on its model card. " if card_schema(card) else "CoNLL04's (its card records none). ")
                 + "Other label names are read as text too, but a model trained on a fixed label set rarely gets "
                 "them right: a warning appears when the schema asks for labels it never saw.")
    with gr.Blocks(title="LDNet universal IE") as demo:
        gr.Markdown(
            "## LDNet — universal information extraction\n"
            f"Model `{Path(name).name or name}` ({config_rows.get('encoder', '?')}). {about}"
            + (f"  \nMetrics on its card: `{json.dumps(metrics)}`" if metrics else ""),
            elem_id="about",
        )
        with gr.Row():
            with gr.Column(scale=3):
                text = gr.Textbox(label="Text", lines=4, elem_id="text",
                                  value=(examples or FALLBACK_EXAMPLES)[0])
                with gr.Row():
                    ents = gr.Textbox(label="Entity types (comma-separated)", elem_id="ent-types",
                                      value=", ".join(schema.get("ent", [])))
                    rels = gr.Textbox(label="Relation types (comma-separated)", elem_id="rel-types",
                                      value=", ".join(schema.get("rel", [])))
                events = gr.Textbox(label="Event types with roles (one per line: `type: role, role`)", lines=2,
                                    elem_id="event-types", value=format_events(schema.get("event", {})))
                warning = gr.Markdown(check_labels(ents.value, rels.value, events.value), elem_id="unseen-labels")
                with gr.Row():
                    thr = gr.Slider(0.05, 0.95, value=threshold, step=0.05, label="Threshold", elem_id="threshold")
                    skip_inst = gr.Checkbox(value=starts_without_instruction(card, no_instruction), label="No instruction (models trained w/o Inst.)",
                                            elem_id="no-instruction")
                button = gr.Button("Extract", variant="primary", elem_id="extract")
            with gr.Column(scale=4):
                spans = gr.HighlightedText(label="Entities", elem_id="entities", show_legend=False,
                                           combine_adjacent=False)
                table = gr.Dataframe(headers=["kind", "type", "arguments", "score"], label="Relations / events",
                                     elem_id="relations", interactive=False, wrap=True)
                ent_table = gr.Dataframe(headers=["type", "text", "span", "score"], label="All entities",
                                         elem_id="entity-table", interactive=False)
                raw = gr.JSON(label="Answer (unified `ans`)", elem_id="raw")
        gr.Examples(examples=[[t] for t in (examples or FALLBACK_EXAMPLES)], inputs=[text], label="Examples",
                    elem_id="examples")
        inputs = [text, ents, rels, events, thr, skip_inst]
        outputs = [spans, table, ent_table, raw, warning]
        button.click(extract, inputs, outputs, api_name="extract")
        text.submit(extract, inputs, outputs)
        for box in (ents, rels, events):
            box.change(check_labels, [ents, rels, events], warning, show_progress="hidden")
    return demo


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(REPO / "runs" / "demo" / "model"), help="saved LDNet folder")
    p.add_argument("--backend", choices=BACKENDS, default="torch")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--window-stride", type=int, default=None,
                   help="overlap of long-text windows in tokens (default: the saved processor's)")
    p.add_argument("--no-instruction", action="store_true",
                   help="start with 'no instruction' ticked (models trained w/o Inst., like `make demo`'s)")
    a = p.parse_args(argv)
    if not Path(a.model, "config.json").is_file():
        raise SystemExit(f"app: no saved model at {a.model} (run `make demo` first, or pass --model)")
    ie = load_pipeline(a.model, a.backend, threads=a.threads, window_stride=a.window_stride)
    demo = build_demo(ie, example_texts(), no_instruction=a.no_instruction)
    demo.queue(default_concurrency_limit=1).launch(server_name=a.host, server_port=a.port, show_error=True,
                                                   share=False)


if __name__ == "__main__":
    main()
