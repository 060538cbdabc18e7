"""manifest.json of a rendered repository: what every consumer trusts and nobody re-implements.

The local mode and the Pulumi upload read a target's manifest, verify it against the files
(a stale or hand-edited repository must not reach a bucket), and take the sub-manifest of
the models a site serves (``for_site``), expanded through the ensemble calls it records.
``content_hash`` names the immutable bucket prefix ``repo/<content_hash>/``, so it depends
on nothing but file paths and contents.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid.bucket_access import REPO_ROOT
from hybrid.models import refused_on

MANIFEST_NAME = "manifest.json"
_CHUNK = 1 << 20
_REBUILD_HINT = "run `make models` (python -m modelkit build) to render it again"


class ManifestError(Exception):
    """A rendered repository is missing, or its files no longer match manifest.json."""


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """The files of one rendered target, keyed by POSIX path relative to the target dir."""

    target: str
    stack: str
    models: tuple[str, ...]
    files: Mapping[str, FileEntry]
    calls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Model -> the models its ensemble steps call, so that a consumer takes what a model
    needs from the manifest instead of reading the sources."""
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Model -> the TensorRT shape profile its plans are built with on the clusters."""
    quality: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Model -> what a compressed variant was measured at against FP32 when it was built
    (precision, its file and sha256, the quality gate's numbers and thresholds)."""

    @property
    def content_hash(self) -> str:
        return content_hash(self.files)

    @property
    def prefix(self) -> str:
        """The immutable object prefix this repository is uploaded under in every bucket."""
        return f"{REPO_ROOT}{self.content_hash}/"

    @classmethod
    def build(
        cls,
        target: str,
        stack: str,
        models: Iterable[str],
        files: Mapping[str, FileEntry],
        calls: Mapping[str, Iterable[str]] | None = None,
        profiles: Mapping[str, Mapping[str, Any]] | None = None,
        quality: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> "Manifest":
        """A manifest with sorted models and files, so equal content gives equal JSON."""
        return cls(
            target,
            stack,
            tuple(sorted(models)),
            dict(sorted(files.items())),
            {name: tuple(steps) for name, steps in sorted((calls or {}).items())},
            _as_read_back(profiles),
            _as_read_back(quality),
        )

    @classmethod
    def of_directory(cls, root: Path, *, target: str, stack: str) -> "Manifest":
        """Hash every file under ``root`` (except manifest.json); models are its top folders."""
        files = {
            path.relative_to(root).as_posix(): FileEntry(file_sha256(path), path.stat().st_size)
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }
        files.pop(MANIFEST_NAME, None)
        models = {name.split("/", 1)[0] for name in files if "/" in name}
        return cls.build(target, stack, models, files)

    @classmethod
    def read(cls, root: Path) -> "Manifest":
        """The manifest.json in ``root``; a clear ManifestError when absent or malformed."""
        path = root / MANIFEST_NAME
        if not path.is_file():
            raise ManifestError(f"{path} does not exist; {_REBUILD_HINT}")
        try:
            raw = json.loads(path.read_text())
            files = {
                name: FileEntry(str(entry["sha256"]), int(entry["size"]))
                for name, entry in raw["files"].items()
            }
            manifest = cls.build(
                raw["target"],
                raw["stack"],
                raw["models"],
                files,
                raw["calls"],
                raw["profiles"],
                raw["quality"],
            )
            recorded = raw["content_hash"]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ManifestError(f"{path} is malformed ({error!r}); {_REBUILD_HINT}") from error
        if recorded != manifest.content_hash:
            raise ManifestError(
                f"{path}: content_hash {recorded} does not match its file list "
                f"({manifest.content_hash}); {_REBUILD_HINT}"
            )
        return manifest

    def write(self, root: Path) -> Path:
        path = root / MANIFEST_NAME
        path.write_text(self.to_json())
        return path

    def to_json(self) -> str:
        body = {
            "target": self.target,
            "stack": self.stack,
            "content_hash": self.content_hash,
            "models": list(self.models),
            "calls": {name: list(steps) for name, steps in self.calls.items()},
            "profiles": dict(self.profiles),
            "quality": dict(self.quality),
            "files": {
                name: {"sha256": entry.sha256, "size": entry.size}
                for name, entry in self.files.items()
            },
        }
        return json.dumps(body, indent=2) + "\n"

    def verify(self, root: Path) -> None:
        """Raise ManifestError naming the first file that is missing, extra or changed."""
        for name, entry in self.files.items():
            path = root / name
            if not path.is_file():
                raise ManifestError(
                    f"{path} is listed in {MANIFEST_NAME} but missing; {_REBUILD_HINT}"
                )
            if path.stat().st_size != entry.size or file_sha256(path) != entry.sha256:
                raise ManifestError(
                    f"{path} does not match {MANIFEST_NAME} (changed since it was rendered); "
                    f"{_REBUILD_HINT}"
                )
        on_disk = {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}
        on_disk.discard(MANIFEST_NAME)
        extra = sorted(on_disk - set(self.files))
        if extra:
            raise ManifestError(
                f"{root / extra[0]} is not listed in {MANIFEST_NAME} "
                f"({len(extra)} unlisted file(s)); {_REBUILD_HINT}"
            )

    def serving(self, names: Iterable[str]) -> "Manifest":
        """The sub-manifest of ``names`` and every model their ensembles call."""
        needed: set[str] = set()
        pending = list(names)
        while pending:
            name = pending.pop()
            if name not in needed:
                needed.add(name)
                pending.extend(self.calls.get(name, ()))
        return self.for_models(needed)

    def for_site(self, site: str, names: Iterable[str]) -> "Manifest":
        """What ``site`` serves: ``serving(names)``, refused where a model it would load, an
        ensemble step included, may not run there."""
        served = self.serving(names)
        refused = refused_on(site, served.models)
        if refused:
            raise ManifestError(
                f"target '{self.target}' would serve private-only model(s) {sorted(refused)} on "
                f"the {site} site ({'; '.join(refused.values())}); place them on the private "
                "site only in hybrid:models"
            )
        return served

    def for_models(self, names: Iterable[str]) -> "Manifest":
        """The sub-manifest of some models (hash recomputed), e.g. what one site serves."""
        wanted = set(names)
        unknown = sorted(wanted - set(self.models))
        if unknown:
            raise ManifestError(
                f"target '{self.target}' has no model(s) {unknown}; it holds {list(self.models)}"
            )
        files = {name: e for name, e in self.files.items() if name.split("/", 1)[0] in wanted}
        calls = {name: steps for name, steps in self.calls.items() if name in wanted}
        profiles = {name: p for name, p in self.profiles.items() if name in wanted}
        quality = {name: q for name, q in self.quality.items() if name in wanted}
        return Manifest.build(self.target, self.stack, wanted, files, calls, profiles, quality)


def _as_read_back(by_model: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    """Sorted by model and in JSON types, so a manifest equals itself after a round trip."""
    return json.loads(json.dumps(dict(sorted((by_model or {}).items()))))


def load_verified(root: Path) -> Manifest:
    """Read ``root``'s manifest and check every file against it: the consumers' entry point."""
    manifest = Manifest.read(root)
    manifest.verify(root)
    return manifest


def content_hash(files: Mapping[str, FileEntry]) -> str:
    """sha256 over the sorted lines ``"<path> <sha256>\\n"``: the repository's identity."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name} {files[name].sha256}\n".encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
