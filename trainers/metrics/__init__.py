"""``trainers.metrics``: the former name of :mod:`trainers.scoring` (kept so ``from trainers.metrics import ...``
keeps working, private helpers included). This folder holds the ``ldnet_uie`` ``evaluate`` module
(``trainers/metrics/ldnet_uie/``)."""

from ..scoring import (  # noqa: F401
    _IMPL_NAME,
    METRIC_DIR,
    METRIC_SCRIPT,
    __all__,
    _impl,
    _json_default,
    _metric_cache,
    _to_json,
    compute_uie_metrics,
    flatten,
    label_drop_accuracy,
    load_uie_metric,
    metric_path,
)
