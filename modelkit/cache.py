"""Content-hash cache of build artifacts, so that a rebuild redoes only what changed.

An artifact's key hashes everything that can change its bytes: the modelkit modules that
make it, the versions of the libraries they call, the data files they read and, where its
measured facts hold only on this kind of CPU, the CPU's relevant instruction sets. A cache
entry is written to a temporary folder and renamed into place, so a crash never leaves a
half-built entry that looks valid.
"""

import hashlib
import importlib.metadata
import importlib.util
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid.manifest import FileEntry, file_sha256

Report = Callable[[str, int, int], None]
"""Progress callback: (what is happening, steps done, steps in total)."""
META_NAME = "artifact.json"


@dataclass(frozen=True)
class Recipe:
    """How to build one artifact, and what its bytes depend on."""

    name: str
    modules: tuple[str, ...]
    """Python modules whose source is part of the key."""
    packages: tuple[str, ...]
    """Installed distributions whose version is part of the key."""
    inputs: Callable[[], Iterable[Path]]
    """Data files whose content is part of the key."""
    build: Callable[[Path, Report, Mapping[str, "Artifact"]], dict[str, Any]]
    """Writes the artifact's files into a folder, given the ``uses`` artifacts; returns facts
    worth keeping (metrics)."""
    uses: tuple[str, ...] = ()
    """Artifacts built first whose files this one is made from; their keys are part of its key."""
    machine: Callable[[], Iterable[str]] = tuple
    """Facts about this machine that the artifact's facts depend on (a quality gate measured
    with the CPU's own kernels): a machine with other facts builds and gates its own."""


@dataclass(frozen=True)
class Artifact:
    name: str
    key: str
    folder: Path
    files: dict[str, FileEntry]
    facts: dict[str, Any]
    built: bool
    """True when this run built it, False when it came from the cache."""

    def path(self, name: str) -> Path:
        return self.folder / name


def recipe_key(recipe: Recipe, upstream: Mapping[str, "Artifact"] | None = None) -> str:
    """sha256 over the recipe's modules, package versions, input files, used artifacts and
    machine facts."""
    parts: dict[str, Any] = {"recipe": recipe.name, "modules": {}, "packages": {}, "inputs": []}
    if recipe.uses:
        parts["uses"] = {name: (upstream or {})[name].key for name in recipe.uses}
    for module in recipe.modules:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"recipe '{recipe.name}' names unknown module {module}")
        parts["modules"][module] = file_sha256(Path(spec.origin))
    for package in recipe.packages:
        parts["packages"][package] = importlib.metadata.version(package)
    parts["inputs"] = sorted((path.name, file_sha256(path)) for path in recipe.inputs())
    machine = sorted(recipe.machine())
    if machine:
        parts["machine"] = machine
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def ensure(
    recipe: Recipe,
    cache_dir: Path,
    report: Report,
    upstream: Mapping[str, "Artifact"] | None = None,
) -> Artifact:
    """The cached artifact for the recipe's current key, building it first if needed.

    ``upstream`` holds (at least) the artifacts the recipe ``uses``.
    """
    used = {name: (upstream or {})[name] for name in recipe.uses}
    key = recipe_key(recipe, used)
    folder = cache_dir / f"{recipe.name}-{key[:16]}"
    cached = _load(folder, key)
    if cached is not None:
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".building-{recipe.name}-", dir=cache_dir))
    try:
        facts = recipe.build(staging, report, used)
        files = {
            path.name: FileEntry(file_sha256(path), path.stat().st_size)
            for path in sorted(staging.iterdir())
        }
        meta = {"key": key, "files": {n: vars(e) for n, e in files.items()}, "facts": facts}
        (staging / META_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for stale in cache_dir.glob(f"{recipe.name}-*"):
        if stale != folder:
            shutil.rmtree(stale, ignore_errors=True)
    return Artifact(recipe.name, key, folder, files, facts, built=True)


def _load(folder: Path, key: str) -> Artifact | None:
    """The entry in ``folder`` if it is complete and was built for ``key``."""
    try:
        meta = json.loads((folder / META_NAME).read_text())
        files = {name: FileEntry(**entry) for name, entry in meta["files"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if meta.get("key") != key or any(
        not (folder / name).is_file() or (folder / name).stat().st_size != entry.size
        for name, entry in files.items()
    ):
        return None
    name = folder.name.rsplit("-", 1)[0]
    return Artifact(name, key, folder, files, meta["facts"], built=False)
