"""Upload a rendered repository under its immutable prefix, then prove every object.

Triton is pointed at `repo/<content_hash>/` only after `verify` has read every object
back, so a corrupted, missing, unexpected or unencrypted object (or a half-finished
upload) is refused instead of being served.
"""

import hashlib
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from hybrid.console import Progress, make_console
from hybrid.manifest import Manifest
from serving.errors import UploadVerificationError
from serving.local.buckets import Bucket


def transfer_progress(console: Console | None = None, disable: bool = False) -> Progress:
    """A byte-counting progress bar for uploads and verification (lines in a log)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console or make_console(),
        disable=disable,
    )


def publish(bucket: Bucket, source: Path, manifest: Manifest, progress: Progress) -> str:
    """Upload the manifest's files (relative to `source`) and verify them; returns the URL."""
    total = sum(entry.size for entry in manifest.files.values())
    task = progress.add_task(f"upload {_short(bucket, manifest)}", total=total)
    for path, entry in manifest.files.items():
        bucket.put(
            manifest.prefix + path,
            source / path,
            entry.sha256,
            lambda count: progress.advance(task, count),
        )
    verify(bucket, manifest, progress)
    return f"{bucket.url}/{manifest.prefix}"


def verify(bucket: Bucket, manifest: Manifest, progress: Progress) -> None:
    """Read every object back and compare it with the manifest; raise naming each bad one."""
    prefix = manifest.prefix
    found = bucket.sizes(prefix)
    expected = {prefix + path: entry for path, entry in manifest.files.items()}
    problems = [f"{key}: missing" for key in sorted(expected.keys() - found.keys())]
    problems += [f"{key}: not in the manifest" for key in sorted(found.keys() - expected.keys())]
    total = sum(entry.size for entry in expected.values())
    task = progress.add_task(f"verify {_short(bucket, manifest)}", total=total)
    for key in sorted(expected.keys() & found.keys()):
        entry = expected[key]
        digest = hashlib.sha256()
        for chunk in bucket.read(key):
            digest.update(chunk)
            progress.advance(task, len(chunk))
        if digest.hexdigest() != entry.sha256:
            problems.append(
                f"{key}: sha256 {digest.hexdigest()[:12]}... does not match the manifest's "
                f"{entry.sha256[:12]}... ({found[key]} bytes, expected {entry.size})"
            )
        if (encryption := bucket.encryption_problem(key)) is not None:
            problems.append(f"{key}: {encryption}")
    if problems:
        listed = "\n".join(f"  - {bucket.url}/{p}" for p in problems)
        raise UploadVerificationError(
            f"refusing to serve {bucket.url}/{prefix}: {len(problems)} object(s) do not match the "
            f"manifest:\n{listed}\nThe prefix is not served. Rebuild with `make models` and "
            "upload again with `make down-local && make up-local`."
        )


def _short(bucket: Bucket, manifest: Manifest) -> str:
    return f"{bucket.url}/repo/{manifest.content_hash[:8]}…"
