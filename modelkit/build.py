"""``python -m modelkit build``: artifacts from the cache, then one repository per target.

All targets are planned, written to a staging folder and validated before any of them
replaces what is in ``build/repos/``; a broken source therefore leaves the previous
repositories exactly as they were (or nothing, on a first build). A target whose manifest
would not change is not rewritten, which keeps a no-op rebuild well under two seconds.
"""

import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hybrid.config import StackConfig, load_stack_config
from hybrid.manifest import Manifest, ManifestError
from hybrid.paths import CACHE_DIR, MODEL_REPO, PLANS_DIR, REPOS_DIR, TARGETS
from hybrid.precision import ALLOWED_PRECISIONS, INT8
from modelkit.artifacts import MINILM_INT8, RECIPES, TOKENIZER_JSON
from modelkit.cache import Artifact, Report, ensure
from modelkit.errors import ModelkitError
from modelkit.render import VERSION, RenderInputs, TargetPlan, plan_target
from modelkit.validate import validate_repository
from modelkit.vendor import VENDOR_DIR, check_isolated


@dataclass(frozen=True)
class TargetResult:
    target: str
    path: Path
    manifest: Manifest
    changed: bool


@dataclass(frozen=True)
class BuildResult:
    stack: str
    targets: tuple[TargetResult, ...]
    artifacts: dict[str, Artifact]
    seconds: float


def build(
    stack: str,
    *,
    targets: Sequence[str] = TARGETS,
    source: Path = MODEL_REPO,
    out: Path = REPOS_DIR,
    cache_dir: Path = CACHE_DIR,
    plans_dir: Path = PLANS_DIR,
    report: Report | None = None,
    precision: Mapping[str, str] | None = None,
) -> BuildResult:
    """Render ``targets`` of ``stack`` into ``out/<target>/``; ``precision`` overrides the
    stack's ``hybrid:encoderPrecision`` for some targets (the benchmark serves both).

    Raises ModelkitError (sources, placement, artifacts) or ConfigError (the stack file).
    """
    started = time.perf_counter()
    notify: Report = report or (lambda what, done, total: None)
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        raise ModelkitError(f"unknown target(s) {unknown}; choose from {list(TARGETS)}")
    config = load_stack_config(stack)
    if precision:
        refused = {t: p for t, p in precision.items() if p not in ALLOWED_PRECISIONS.get(t, ())}
        if refused:
            raise ModelkitError(f"precision {refused} is not one of {ALLOWED_PRECISIONS}")
        chosen = {**config.serving.encoder_precision, **precision}
        config = replace(config, serving=replace(config.serving, encoder_precision=chosen))
    artifacts = build_artifacts(needed_artifacts(config, targets), cache_dir, notify)
    inputs = RenderInputs(source, artifacts, plans_dir)
    plans = [plan_target(target, config, inputs) for target in targets]
    results = _publish(plans, stack, out, notify)
    return BuildResult(stack, tuple(results), artifacts, time.perf_counter() - started)


def needed_artifacts(config: StackConfig, targets: Sequence[str]) -> tuple[str, ...]:
    """Every artifact but the INT8 encoder, which is built (and gated) only when served."""
    quantized = any(config.serving.encoder_precision[target] == INT8 for target in targets)
    return tuple(name for name in RECIPES if name != MINILM_INT8 or quantized)


def build_artifacts(names: Sequence[str], cache_dir: Path, report: Report) -> dict[str, Artifact]:
    """The named artifacts from the cache (built if needed), each after the ones it uses."""
    artifacts: dict[str, Artifact] = {}
    for name in RECIPES:
        if name in names:
            artifacts[name] = ensure(RECIPES[name], cache_dir, report, artifacts)
    return artifacts


def _publish(plans: list[TargetPlan], stack: str, out: Path, notify: Report) -> list[TargetResult]:
    """Write the changed targets to staging, validate them all, then swap them in."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-staging-", dir=out.parent))
    try:
        results, changed = [], []
        for index, plan in enumerate(plans):
            notify(f"render {plan.target}", index, len(plans))
            manifest = plan.manifest(stack)
            if _current(out / plan.target) == manifest:
                results.append(TargetResult(plan.target, out / plan.target, manifest, False))
                continue
            root = staging / plan.target
            plan.write(root)
            validate_repository(root)
            _check_vendored(root)
            manifest.verify(root)  # the cache files really are what their hashes say
            manifest.write(root)
            results.append(TargetResult(plan.target, out / plan.target, manifest, True))
            changed.append(plan.target)
        notify("publish", len(plans), len(plans))
        out.mkdir(parents=True, exist_ok=True)
        for target in changed:
            _swap(staging / target, out / target)
        return results
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_vendored(root: Path) -> None:
    """A cloud target's shipped ``tokenizers`` loads with nothing but the standard library."""
    version = root / "tokenizer" / VERSION
    if (version / VENDOR_DIR).is_dir():
        check_isolated(version / VENDOR_DIR, version / TOKENIZER_JSON)


def _current(root: Path) -> Manifest | None:
    """The manifest of what is on disk, if it is intact; None means "render it again"."""
    try:
        manifest = Manifest.read(root)
        manifest.verify(root)
    except ManifestError:
        return None
    return manifest


def _swap(new: Path, dest: Path) -> None:
    """Replace ``dest`` by ``new`` with two renames, so readers never see a mixed folder."""
    if dest.exists():
        retired = dest.with_name(f".{dest.name}-retired-{time.time_ns()}")
        dest.rename(retired)
        new.rename(dest)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        new.rename(dest)
