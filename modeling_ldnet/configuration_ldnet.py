"""LDNet configuration."""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig

#: Tag tokens added to the tokenizer, in the reference order (SPEC §2): class label, mention/event type,
#: relation/role, instruction, text (with labels), text (plain, MRC), background.
DEFAULT_SPECIAL_TOKENS: dict[str, str] = {
    "cls_label": "[LC]",
    "mention_label": "[LM]",
    "relation_label": "[LR]",
    "instruction": "[I]",
    "text": "[TL]",
    "text_plain": "[TP]",
    "background": "[B]",
}

#: Channel index -> paper name. SPEC §3.2: ch0 NNW = AS (intra-span), ch1 NSW = A2A (span-to-span),
#: ch2 THW = TA (closing tail->label edge).
DEFAULT_CHANNEL_NAMES: tuple[str, str, str] = ("as", "a2a", "ta")

_CHOICES: dict[str, tuple[Any, ...]] = {
    "label_drop_mode": ("logit", "prob", "log_odds"),
    "label_drop_axis": ("column", "row", "both"),
    "span_graph_loss_reduction": ("mean", "sum"),
    "label_drop_loss_reduction": ("valid_mean", "padded_mean"),
    "distill_target": ("logits", "probs"),
    "overflow": ("window", "error", "truncate"),
    "fusion_mode": ("paper", "code"),
}


#: Settings that ``LDNetModel.from_encoder`` (and so ``ldnet-train`` / ``make demo``) gives a NEW model unless told
#: otherwise: the measured-best forms (bench/RESULTS.md §10). ``LDNetConfig()``'s own defaults stay the paper /
#: reference-code forms so that folders saved before these settings existed load and decode unchanged.
NEW_MODEL_DEFAULTS: dict[str, Any] = {
    "score_bias_init": -5.0,  # a rare-link prior: CoNLL04 dev ent F1 0.36 -> 0.52 at 300 steps (logit gate)
    "label_drop_mode": "log_odds",  # a gate that can drop a token: 0.52 -> 0.69 ent, 0.10 -> 0.31 rel
    "label_drop_detach": True,  # the gate learns from L_LD alone
}


#: the answer fields whose labels may carry their own decoding threshold (``decode_label_thresholds``)
LABEL_THRESHOLD_TASKS: tuple[str, ...] = ("ent", "discontinuous_ent", "rel", "hyper_rel", "event")


class LDNetConfig(PretrainedConfig):
    r"""Configuration of :class:`~modeling_ldnet.LDNetModel` (paper: Yang et al. 2025, "Label Drop for Multi-Aspect
    Relation Modeling in Universal Information Extraction"; our SPEC: ``shared/docs/SPEC.md``).

    Args:
        encoder_config (`PretrainedConfig` or `dict`, *optional*):
            Full configuration of the text encoder (any ``AutoModel`` encoder: BERT, DeBERTa-v2/v3, XLM-R, ...).
            It is stored nested in ``config.json`` so a saved folder rebuilds the encoder without the original
            checkpoint. A dict must carry ``model_type``. Defaults to a BERT-base config.
        encoder_name_or_path (`str`, *optional*): where the encoder weights came from (informational only).
        head_dim (`int`, defaults to 64): ``d_i``, the query/key size of each span-graph channel (eqs 9-10).
        num_channels (`int`, defaults to 3): number of span-graph channels; LDNet uses exactly 3.
        channel_names (`list[str]`, defaults to ``["as", "a2a", "ta"]``): paper names of channels 0/1/2
            (NNW = AS, NSW = A2A, THW = TA; SPEC §3.2). Informational and used in logs.
        use_rope (`bool`, defaults to True): rotate queries/keys with RoPE before the dot product (eq 10).
        rope_theta (`float`, defaults to 10000.0): RoPE base, ``theta_m = rope_theta ** (-2m / head_dim)``.
        use_label_drop (`bool`, defaults to True): label-drop gate (eqs 15-16) and its BCE loss (eqs 17-18).
            False is the paper's ``LDNet_MR`` ablation (reference code ``only_use_mr``).
        label_drop_mode (`str`, defaults to ``"logit"``): ``"logit"`` gates the raw scores, ``P = S * lhat``
            (reference code; decision-neutral at inference, SPEC §4.4); ``"prob"`` gates probabilities,
            ``sigmoid(S) * lhat`` is thresholded (paper text); the loss uses the gated scores ``S * lhat`` in both.
            ``"log_odds"`` adds the gate in log-odds space, ``P = S + log(lhat)``: a token the gate drops
            (``lhat -> 0``) loses its links at inference, and the loss reads the same ``P`` (our form).
        label_drop_axis (`str`, defaults to ``"column"``): ``"column"`` scales column ``j`` by ``lhat_j`` (eq 16 as
            written and the reference code: ``lhat`` multiplies every row vector elementwise); ``"row"`` scales
            row ``i`` by ``lhat_i`` instead; ``"both"`` gates row and column (``lhat_i * lhat_j``, or
            ``log lhat_i + log lhat_j`` in ``"log_odds"`` mode).
        label_drop_detach (`bool`, defaults to False): stop the span-graph loss's gradient at the gate, so ``lhat``
            learns from the label-drop BCE (eqs 17-18) alone and the two losses cannot pull it in opposite ways.
        label_drop_per_channel (`bool`, defaults to False): one gate head per channel (paper ``FFNN^r``) instead of
            one shared head (reference code). Targets are identical either way.
        label_drop_rate (`float`, defaults to 1.0): ablation "drop rate" ``rho``: during training each forward gates
            only ``round(rho * L)`` randomly chosen rows/columns (SPEC §4.4). 1.0 gates all (normal label drop).
        score_bias_init (`float`, *optional*): when set, a learnable per-channel bias is added to the link scores
            ``S`` (eq 11), initialised to this value: a rare-link prior (a negative value) so an untrained model does
            not mark half of all cells positive. ``None`` (default) keeps the paper's bias-free scores.
        span_graph_loss_weight (`float`, defaults to 1.0): weight of the multi-label categorical CE ``L_MR``.
        label_drop_loss_weight (`float`, defaults to 1.0): weight of the label-drop BCE ``L_LD``.
        distill_weight (`float`, defaults to 1.0): weight of the model-transfer MSE ``L_MT`` (eq 19), used by the
            trainer when a batch carries teacher scores.
        distill_target (`str`, defaults to ``"logits"``): MSE on gated logits (reference) or on probabilities
            (``"probs"``, the paper's wording).
        span_graph_loss_reduction (`str`, defaults to ``"mean"``): ``"mean"`` over records x channels (reference
            code) or ``"sum"`` over channels, mean over records (eq 14).
        label_drop_loss_reduction (`str`, defaults to ``"valid_mean"``): BCE averaged over real tokens (SPEC §8.13)
            or over the padded ``B x L`` grid (``"padded_mean"``, reference code).
        decode_threshold (`float`, defaults to 0.5): a link exists when its probability exceeds this (§5.1).
        decode_channel_thresholds (`list[float]`, *optional*): one decoding threshold per channel, fitted on dev
            data by ``trainers.calibration.calibrate_thresholds`` (``ldnet-train --calibrate``); when set, the
            pipeline and the trainer's decoding use it instead of ``decode_threshold``.
        decode_label_thresholds (`dict[str, dict[str, float]]`, *optional*): thresholds per label **name**,
            ``{task: {label: threshold}}`` (task ``ent`` / ``rel`` / ``discontinuous_ent`` / ``hyper_rel`` /
            ``event``), fitted on dev by ``calibrate_thresholds(per_label=True)`` (``ldnet-train
            --calibrate_label_thresholds``). The pipeline maps them onto any schema order at decode time: a named
            label's items are kept when their score reaches its threshold (decoded lower when it is below the
            channels'); every other label keeps the channel thresholds. A call's explicit ``threshold=`` overrides them.
        relation_arg_types (`dict[str, dict[str, list[str]]]`, *optional*): the model's default argument types per
            relation **name**, ``{"work for": {"head": ["people"], "tail": ["organization"]}}`` (a missing side allows
            any type), derived from the training data by ``ldnet-train --derive_arg_types``
            (``trainers.arg_types.derive_arg_types``). The pipeline applies them to a schema's plain relation labels
            when the same call extracts entities (each side cut to the schema's entity labels; a side with none of
            them leaves the relation untyped); a schema's own typed form wins; ``arg_types=False`` turns them off.
        default_instruction (`str`, *optional*): the instruction ``pipeline("universal-ie")`` gives a record that has
            none: the one the model was trained with (``""`` for an instruction-free model, e.g. ``make demo``'s;
            ``ldnet-train`` sets it when every training record carries the same instruction). ``None``: a
            paper-style instruction picked from the schema.
        decode_max_parts (`int`, defaults to 8): longest chain (in parts) the decoder searches; 5 covers every
            task but discontinuous entities with more than 7 fragments.
        decode_max_links_per_row (`int`, defaults to 16): the decoder keeps at most this many top-scoring NNW links
            per row, which bounds the search on untrained (dense) score grids.
        decode_span_hygiene (`str`, *optional*, defaults to ``"suppress"``): what ``pipeline("universal-ie")`` does
            with punctuation variants of one answer (``Boston`` and ``Boston .``, same type; whitespace-separated
            punctuation tokens at the edges only): ``"suppress"`` keeps the one without the punctuation,
            ``"merge"`` the best-scored, ``None`` keeps both (the paper's decoder; the processor's own default,
            which round trips gold). Measured on CoNLL04 / CoNLL03 dev in bench/RESULTS.md §14.
        special_tokens (`dict[str, str]`): tag tokens (keys as in ``DEFAULT_SPECIAL_TOKENS``).
        max_seq_length (`int`, defaults to 512): longest input sequence in tokens, ``[CLS]`` and ``[SEP]`` included
            (SPEC `max_seq_len`; not `max_length`, which transformers 5 reserves for generation).
        overflow (`str`, defaults to ``"window"``): a text longer than what fits is split into overlapping windows
            (``"window"``), refused with an error (``"error"``), or truncated with the loss counted (``"truncate"``).
        window_stride (`int`, defaults to 128): overlap, in text tokens, of consecutive windows.
        max_description_tokens (`int`, defaults to 32): most tokens of one label description (schemas like
            ``{"ent": {"disease": "a disorder of ..."}}``); a longer one is cut and counted in the encoding report.
        trained_labels (`dict[str, list[str]]`, *optional*): the schema labels the model saw in training, by task
            (``{"ent": ["person", ...], "event": [types and roles]}``); ``LDNetTrainer`` records the union over the
            schemas of its training records (negatives shown in a schema included) when it trains. ``None``: not
            known (folders saved before this field; no warning). ``pipeline("universal-ie")`` warns once per call,
            and lists them in its report (``last_report.unseen_labels``), when a schema asks for a label not in it.
        generalist (`bool`, defaults to False): the model is meant for labels it never saw (e.g. pre-trained on a
            large label mix for zero-shot use): the pipeline does not warn about unseen labels.
        vision_model_name (`str`, *optional*): timm architecture of the image encoder (e.g.
            ``"vit_small_patch14_dinov2"``); ``None`` builds a text-only model (paper ``alpha = 0``).
        vision_config (`dict`, *optional*): extra keyword arguments for ``timm.create_model`` (e.g. a tiny ViT's
            ``embed_dim``/``depth``/``num_heads``/``img_size`` in tests).
        vision_weights_path (`str`, *optional*): a local safetensors file with the ViT's weights. Never downloaded.
        vision_hidden_size (`int`, *optional*): ViT feature size ``d_v``; filled from the timm model when built.
        vision_mlp_hidden (`int`, defaults to 2048): hidden width of the three-layer MLP on image features (eq 4).
        freeze_vision (`bool`, defaults to True): keep the ViT frozen (reference code).
        fusion_alpha (`float`, defaults to 0.5): ``alpha`` in ``M = H + alpha * V`` (eq 8) when an image is given.
        fusion_mode (`str`, defaults to ``"paper"``): ``"paper"``: per-position map ``V_i = tanh(w_i v' + c_i)``
            (``FFNN_I in R^{1 x |x|}``); ``"code"``: the reference ``Linear(d_h, max_length * d_h)``.
        initializer_range (`float`, defaults to 0.02): std of the normal init of the LDNet heads.
    """

    model_type = "ldnet"
    sub_configs = {"encoder_config": AutoConfig}

    def __init__(
        self,
        encoder_config: PretrainedConfig | dict | None = None,
        encoder_name_or_path: str | None = None,
        head_dim: int = 64,
        num_channels: int = 3,
        channel_names: list[str] | tuple[str, ...] = DEFAULT_CHANNEL_NAMES,
        use_rope: bool = True,
        rope_theta: float = 10000.0,
        use_label_drop: bool = True,
        label_drop_mode: str = "logit",
        label_drop_axis: str = "column",
        label_drop_per_channel: bool = False,
        label_drop_rate: float = 1.0,
        label_drop_detach: bool = False,
        score_bias_init: float | None = None,
        span_graph_loss_weight: float = 1.0,
        label_drop_loss_weight: float = 1.0,
        distill_weight: float = 1.0,
        distill_target: str = "logits",
        span_graph_loss_reduction: str = "mean",
        label_drop_loss_reduction: str = "valid_mean",
        decode_threshold: float = 0.5,
        decode_channel_thresholds: list[float] | None = None,
        decode_label_thresholds: dict[str, dict[str, float]] | None = None,
        relation_arg_types: dict[str, dict[str, list[str]]] | None = None,
        default_instruction: str | None = None,
        decode_max_parts: int = 8,
        decode_max_links_per_row: int = 16,
        decode_span_hygiene: str | None = "suppress",
        special_tokens: dict[str, str] | None = None,
        max_seq_length: int = 512,
        overflow: str = "window",
        window_stride: int = 128,
        max_description_tokens: int = 32,
        trained_labels: dict[str, list[str]] | None = None,
        generalist: bool = False,
        vision_model_name: str | None = None,
        vision_config: dict[str, Any] | None = None,
        vision_weights_path: str | None = None,
        vision_hidden_size: int | None = None,
        vision_mlp_hidden: int = 2048,
        freeze_vision: bool = True,
        fusion_alpha: float = 0.5,
        fusion_mode: str = "paper",
        initializer_range: float = 0.02,
        **kwargs: Any,
    ) -> None:
        if encoder_config is None:
            encoder_config = AutoConfig.for_model("bert")
        elif isinstance(encoder_config, dict):
            if "model_type" not in encoder_config:
                raise ValueError("LDNetConfig: `encoder_config` dict needs a `model_type` (e.g. 'bert')")
            encoder_config = AutoConfig.for_model(**encoder_config)
        elif not isinstance(encoder_config, PretrainedConfig):
            raise TypeError(
                f"LDNetConfig: `encoder_config` must be a PretrainedConfig or dict, got {type(encoder_config).__name__}"
            )
        self.encoder_config = encoder_config
        self.encoder_name_or_path = encoder_name_or_path
        self.head_dim = head_dim
        self.num_channels = num_channels
        self.channel_names = list(channel_names)
        self.use_rope = use_rope
        self.rope_theta = rope_theta
        self.use_label_drop = use_label_drop
        self.label_drop_mode = label_drop_mode
        self.label_drop_axis = label_drop_axis
        self.label_drop_per_channel = label_drop_per_channel
        self.label_drop_rate = label_drop_rate
        self.label_drop_detach = bool(label_drop_detach)
        self.score_bias_init = None if score_bias_init is None else float(score_bias_init)
        self.span_graph_loss_weight = span_graph_loss_weight
        self.label_drop_loss_weight = label_drop_loss_weight
        self.distill_weight = distill_weight
        self.distill_target = distill_target
        self.span_graph_loss_reduction = span_graph_loss_reduction
        self.label_drop_loss_reduction = label_drop_loss_reduction
        self.decode_threshold = decode_threshold
        self.decode_channel_thresholds = (
            None if decode_channel_thresholds is None else [float(t) for t in decode_channel_thresholds]
        )
        self.decode_label_thresholds = (
            {t: dict(v) for t, v in decode_label_thresholds.items()}
            if isinstance(decode_label_thresholds, dict) and all(isinstance(v, dict) for v in decode_label_thresholds.values())
            else decode_label_thresholds
        )
        self.relation_arg_types = (  # copied; anything malformed is kept as given for _validate to name
            {r: {side: list(t) for side, t in spec.items()} for r, spec in relation_arg_types.items()}
            if isinstance(relation_arg_types, dict)
            and all(isinstance(v, dict) and all(isinstance(t, (list, tuple)) for t in v.values())
                    for v in relation_arg_types.values())
            else relation_arg_types
        )
        self.default_instruction = default_instruction
        self.decode_max_parts = decode_max_parts
        self.decode_max_links_per_row = decode_max_links_per_row
        self.decode_span_hygiene = decode_span_hygiene
        self.special_tokens = {**DEFAULT_SPECIAL_TOKENS, **(special_tokens or {})}
        self.max_seq_length = max_seq_length
        self.overflow = overflow
        self.window_stride = window_stride
        self.max_description_tokens = max_description_tokens
        self.trained_labels = (  # copied; anything malformed is kept as given for _validate to name
            {t: list(labels) for t, labels in trained_labels.items()}
            if isinstance(trained_labels, dict) and all(isinstance(v, (list, tuple)) for v in trained_labels.values())
            else trained_labels
        )
        self.generalist = generalist
        self.vision_model_name = vision_model_name
        self.vision_config = dict(vision_config or {})
        self.vision_weights_path = vision_weights_path
        self.vision_hidden_size = vision_hidden_size
        self.vision_mlp_hidden = vision_mlp_hidden
        self.freeze_vision = freeze_vision
        self.fusion_alpha = fusion_alpha
        self.fusion_mode = fusion_mode
        self.initializer_range = initializer_range
        super().__init__(**kwargs)
        self._validate()

    @property
    def hidden_size(self) -> int:
        return self.encoder_config.hidden_size

    def _validate(self) -> None:
        def bad(field: str, msg: str) -> ValueError:
            return ValueError(f"LDNetConfig.{field}: {msg} (got {getattr(self, field)!r})")

        for field, choices in _CHOICES.items():
            if getattr(self, field) not in choices:
                raise bad(field, f"must be one of {choices}")
        if not isinstance(self.head_dim, int) or self.head_dim <= 0:
            raise bad("head_dim", "must be a positive int")
        if self.use_rope and self.head_dim % 2:
            raise bad("head_dim", "must be even when use_rope=True (RoPE rotates pairs)")
        if self.num_channels != 3:
            raise bad("num_channels", "LDNet's span graph has exactly 3 channels (NNW/AS, NSW/A2A, THW/TA)")
        if len(self.channel_names) != self.num_channels:
            raise bad("channel_names", f"needs {self.num_channels} names")
        if not 0.0 < self.label_drop_rate <= 1.0:
            raise bad("label_drop_rate", "must be in (0, 1]")
        if not 0.0 < self.decode_threshold < 1.0:
            raise bad("decode_threshold", "must be in (0, 1)")
        for field in ("span_graph_loss_weight", "label_drop_loss_weight", "distill_weight"):
            if getattr(self, field) < 0:
                raise bad(field, "must be >= 0")
        if self.decode_channel_thresholds is not None and (
            len(self.decode_channel_thresholds) != self.num_channels
            or not all(0.0 < t < 1.0 for t in self.decode_channel_thresholds)
        ):
            raise bad("decode_channel_thresholds", f"needs {self.num_channels} values in (0, 1)")
        if self.decode_label_thresholds is not None:
            table = self.decode_label_thresholds
            if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
                raise bad("decode_label_thresholds", "must be {task: {label: threshold}}")
            for task, labels in table.items():
                if task not in LABEL_THRESHOLD_TASKS:
                    raise bad("decode_label_thresholds", f"task {task!r} is not one of {LABEL_THRESHOLD_TASKS}")
                for label, t in labels.items():
                    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 < t < 1.0:
                        raise bad("decode_label_thresholds", f"{task}[{label!r}] must be in (0, 1)")
        if self.relation_arg_types is not None:
            table = self.relation_arg_types
            if not isinstance(table, dict):
                raise bad("relation_arg_types", 'must be {relation: {"head": [types], "tail": [types]}}')
            for rel, spec in table.items():
                if not isinstance(spec, dict) or not spec or set(spec) - {"head", "tail"}:
                    raise bad("relation_arg_types", f'{rel!r} must be {{"head": [types], "tail": [types]}}')
                for side, types in spec.items():
                    if not isinstance(types, list) or not types or not all(isinstance(t, str) and t for t in types):
                        raise bad("relation_arg_types", f"{rel!r}.{side} must be a non-empty list of entity types")
        if self.default_instruction is not None and not isinstance(self.default_instruction, str):
            raise bad("default_instruction", "must be a string or None")
        if self.decode_max_parts < 1:
            raise bad("decode_max_parts", "must be >= 1")
        if self.decode_max_links_per_row < 1:
            raise bad("decode_max_links_per_row", "must be >= 1")
        if self.decode_span_hygiene not in (None, "merge", "suppress"):
            raise bad("decode_span_hygiene", "must be 'merge', 'suppress' or None")
        missing = set(DEFAULT_SPECIAL_TOKENS) - set(self.special_tokens)
        if missing or len(set(self.special_tokens.values())) != len(self.special_tokens):
            raise bad("special_tokens", f"needs distinct strings for {sorted(DEFAULT_SPECIAL_TOKENS)}")
        if self.max_seq_length < 16:
            raise bad("max_seq_length", "must be >= 16")
        if not 0 <= self.window_stride < self.max_seq_length:
            raise bad("window_stride", "must be in [0, max_seq_length)")
        if isinstance(self.max_description_tokens, bool) or not isinstance(self.max_description_tokens, int) or (
            self.max_description_tokens < 1
        ):
            raise bad("max_description_tokens", "must be an int >= 1")
        if self.trained_labels is not None and not (
            isinstance(self.trained_labels, dict)
            and all(isinstance(t, str) and isinstance(v, list) for t, v in self.trained_labels.items())
            and all(isinstance(x, str) for labels in self.trained_labels.values() for x in labels)
        ):
            raise bad("trained_labels", "must map each task to a list of label strings")
        if not isinstance(self.generalist, bool):
            raise bad("generalist", "must be a bool")
        if not 0.0 <= self.fusion_alpha <= 1.0:
            raise bad("fusion_alpha", "must be in [0, 1]")
        if self.head_dim and self.initializer_range <= 0:
            raise bad("initializer_range", "must be > 0")
