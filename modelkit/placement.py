"""Which model folders a site's repository holds.

Stacks place client-facing models (``text_embedding``, ``ctr_ranker``); a repository
needs each of those plus, for an ensemble, every model its steps call. Private-only models
are refused on the public site here too, not only in stack validation, so no code path
can render them into a public repository.
"""

from collections.abc import Iterable
from pathlib import Path

from infra.stack_config import PRIVATE_ONLY_MODELS, StackConfig
from modelkit.errors import PlacementError, SourceError
from modelkit.layout import MODEL_REPO
from modelkit.triton_config import CONFIG_NAME, read_config


def expand(models: Iterable[str], source: Path = MODEL_REPO) -> tuple[str, ...]:
    """The sorted folder names needed to serve ``models``: each one and its ensemble steps."""
    needed: set[str] = set()
    pending: list[tuple[str, tuple[str, str] | None]] = [(name, None) for name in models]
    while pending:
        name, referrer = pending.pop()
        if name in needed:
            continue
        path = source / name / CONFIG_NAME
        if not path.is_file():
            known = sorted(p.parent.name for p in source.glob(f"*/{CONFIG_NAME}"))
            if referrer is None:
                raise PlacementError(f"no model '{name}' in {source}; known models: {known}")
            ensemble, field = referrer
            raise SourceError(ensemble, field, f"calls '{name}', which is not in {known}")
        needed.add(name)
        steps = read_config(path, name).ensemble_scheduling.step
        pending.extend(
            (step.model_name, (name, f"ensemble_scheduling.step[{index}].model_name"))
            for index, step in enumerate(steps)
        )
    return tuple(sorted(needed))


def site_models(config: StackConfig, site: str, source: Path = MODEL_REPO) -> tuple[str, ...]:
    """The model folders the stack places on ``site``: what its Triton loads and bucket holds."""
    folders = expand(config.models_on(site), source)
    if site == "public":
        leaked = sorted(set(folders) & set(PRIVATE_ONLY_MODELS))
        if leaked:
            reasons = "; ".join(f"{name}: {PRIVATE_ONLY_MODELS[name]}" for name in leaked)
            raise PlacementError(
                f"stack '{config.stack}' would serve private-only model(s) {leaked} on the "
                f"public site ({reasons}); place them on the private site only in hybrid:models"
            )
    return folders
