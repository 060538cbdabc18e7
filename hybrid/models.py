"""The model catalog: the client-facing models, where each may run, and why some may not."""

from collections.abc import Iterable

from hybrid.sites import Site

DEFAULT_MODEL_PLACEMENT: dict[str, tuple[Site, ...]] = {
    "text_embedding": ("public", "private"),
    "ctr_ranker": ("private",),
}
"""The catalog (every model a stack may place) and where ``hybrid:models`` puts it by default."""

DEFAULT_LATENCY_SLO_MS: dict[str, int] = {"text_embedding": 200}
"""End-to-end latency SLO per model in ms, ``hybrid:latencySloMs``'s default (seed case:
product search under 200 ms); the clients' burst routing spills before it would break."""

PRIVATE_ONLY_MODELS: dict[str, str] = {"ctr_ranker": "it scores user behaviour data"}
"""Models that must never leave the private site, and why (checked on every stack)."""


def refused_on(site: str, models: Iterable[str]) -> dict[str, str]:
    """The models among ``models`` that may not run on ``site``, each with the reason."""
    if site != "public":
        return {}
    return {
        name: PRIVATE_ONLY_MODELS[name] for name in sorted(set(models) & set(PRIVATE_ONLY_MODELS))
    }
