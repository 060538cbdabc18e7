"""Which model folders a site's repository holds.

Stacks place client-facing models (``text_embedding``, ``ctr_ranker``); a repository
needs each of those plus, for an ensemble, every model its steps call. Private-only models
are refused on the public site here too, not only in stack validation, so no code path
can render them into a public repository.

The local target serves the ensembles in ``FUSED_ON_LOCAL`` as one python model, so there
they call no steps and their step models are not shipped.
"""

from collections.abc import Iterable
from pathlib import Path

from hybrid.config import StackConfig
from hybrid.models import refused_on
from hybrid.paths import MODEL_REPO
from modelkit.errors import PlacementError, SourceError
from modelkit.triton_config import CONFIG_NAME, read_config

FUSED_ON_LOCAL = frozenset({"text_embedding"})
"""Ensembles the local (CPU) target renders as one python-backend model: there every step
is another python process, a shared-memory hop and a batcher's delay (issue 12)."""


def expand(
    models: Iterable[str], source: Path = MODEL_REPO, *, local: bool = False
) -> tuple[str, ...]:
    """The sorted folder names needed to serve ``models``: each one and its ensemble steps
    (on the ``local`` target, none for the ensembles it fuses)."""
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
        if local and name in FUSED_ON_LOCAL:
            continue
        steps = read_config(path, name).ensemble_scheduling.step
        pending.extend(
            (step.model_name, (name, f"ensemble_scheduling.step[{index}].model_name"))
            for index, step in enumerate(steps)
        )
    return tuple(sorted(needed))


def site_models(
    config: StackConfig, site: str, source: Path = MODEL_REPO, *, local: bool = False
) -> tuple[str, ...]:
    """The model folders the stack places on ``site``: what its Triton loads and bucket holds
    (``local``: a site of the local mode, which serves the local target)."""
    folders = expand(config.models_on(site), source, local=local)
    refused = refused_on(site, folders)
    if refused:
        reasons = "; ".join(f"{name}: {why}" for name, why in refused.items())
        raise PlacementError(
            f"stack '{config.stack}' would serve private-only model(s) {sorted(refused)} on the "
            f"{site} site ({reasons}); place them on the private site only in hybrid:models"
        )
    return folders
