"""``python -m modelkit fetch-plans``: bring the TensorRT plans the clusters built back home.

The build Jobs (``tensorrt_job``) write ``model_sm<cc>.plan`` next to the encoder's ONNX
under the served prefix. A render only picks plans up from ``build/plans/<graph id>/``, so
this downloads them there, and only when the bucket's ONNX is the graph the next render
uses: a plan is only valid for the graph it was built from.

Nothing half-done is ever picked up. Each plan is downloaded to a hidden temporary file in
the plans folder and checked (not empty, every byte the bucket announced, the bucket's
checksum where it has one); only when every plan is complete are they renamed into place.
"""

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from hybrid.config import StackConfig
from hybrid.manifest import FileEntry
from hybrid.paths import CACHE_DIR, PLANS_DIR
from modelkit.artifacts import ENCODER_ONNX, MINILM, RECIPES
from modelkit.cache import Report, ensure
from modelkit.errors import FetchError
from modelkit.render import VERSION, plans_folder, site_plans
from modelkit.tensorrt_job import ENCODER, job_name

SITE_OF_SCHEME = {"s3": "public", "gs": "private"}
"""The public site's bucket is on S3, the private site's on GCS."""
_CHUNK = 1 << 20
_URL_HINT = "take it from `pulumi stack output modelRepositories`"


@dataclass(frozen=True)
class RepositoryUrl:
    """``s3://bucket/repo/<hash>`` or ``gs://bucket/repo/<hash>``: a served repository."""

    scheme: str
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> "RepositoryUrl":
        scheme, separator, rest = url.partition("://")
        bucket, _, prefix = rest.partition("/")
        root, _, content_hash = prefix.strip("/").partition("/")
        if (
            scheme not in SITE_OF_SCHEME
            or not separator
            or not bucket
            or root != "repo"
            or not content_hash
            or "/" in content_hash
        ):
            raise FetchError(
                f"'{url}' is not a served model repository like s3://<bucket>/repo/<hash> "
                f"or gs://<bucket>/repo/<hash>; {_URL_HINT}"
            )
        return cls(scheme, bucket, f"{root}/{content_hash}")

    @property
    def site(self) -> str:
        return SITE_OF_SCHEME[self.scheme]

    def encoder_key(self, name: str) -> str:
        """The object key of a file in the encoder's version folder."""
        return f"{self.prefix}/{ENCODER}/{VERSION}/{name}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class RemoteObject:
    size: int
    sha256: str | None
    """The ``sha256`` metadata ModelRepositoryUpload puts on every object (Jobs don't)."""
    version: str
    """ETag (S3) or generation (GCS): the download must read exactly the object sized here."""


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class ObjectStore(Protocol):
    """The two calls fetching needs, on S3 or GCS; errors come out as FetchError."""

    def stat(self, key: str) -> RemoteObject | None: ...

    def download(self, key: str, remote: RemoteObject, out: Sink) -> None: ...


@dataclass(frozen=True)
class PlanStatus:
    """One GPU architecture of the site and where its plan stands."""

    capability: str
    gpus: tuple[str, ...]
    plan: Path
    fetched_bytes: int | None
    """Bytes downloaded now; None when the bucket holds no plan for it (yet)."""
    covered: bool
    """A plan for this architecture is in the plans folder now (this fetch or an earlier one)."""


@dataclass(frozen=True)
class FetchResult:
    url: str
    site: str
    folder: Path
    plans: tuple[PlanStatus, ...]

    @property
    def missing(self) -> tuple[PlanStatus, ...]:
        return tuple(status for status in self.plans if not status.covered)


def current_graph(cache_dir: Path = CACHE_DIR, report: Report | None = None) -> FileEntry:
    """The encoder graph the next ``make models`` renders (exported first if not cached)."""
    encoder = ensure(RECIPES[MINILM], cache_dir, report or (lambda what, done, total: None))
    return encoder.files[ENCODER_ONNX]


def repository_urls(stack_output: str) -> list[str]:
    """The URLs in ``pulumi stack output modelRepositories --json`` (site -> URL)."""
    try:
        sites = json.loads(stack_output)
    except ValueError:
        sites = None
    if not isinstance(sites, dict) or not all(isinstance(u, str) for u in sites.values()):
        raise FetchError(
            "expected the JSON of `pulumi stack output modelRepositories --json`, like "
            '{"public": "s3://...", "private": "gs://..."}; got ' + repr(stack_output[:80])
        )
    return [sites[site] for site in sorted(sites)]


def fetch_plans(
    repo_url: str,
    config: StackConfig,
    onnx: FileEntry,
    *,
    plans_dir: Path = PLANS_DIR,
    report: Report | None = None,
) -> FetchResult:
    """Download the plans for the site of ``repo_url`` built from the ``onnx`` graph.

    ``config`` says which GPU architectures the site's pools have (and where its bucket
    is); ``onnx`` is the encoder graph the next ``make models`` renders. A plan the bucket
    does not hold yet is reported as missing; anything wrong raises FetchError and writes
    nothing.
    """
    notify: Report = report or (lambda what, done, total: None)
    url = RepositoryUrl.parse(repo_url)
    store = open_store(url, config)
    _check_graph(url, store, onnx)
    wanted = site_plans(plans_dir, onnx, config.gpu_types_on(url.site))
    remote = {capability: store.stat(url.encoder_key(p.name)) for capability, p in wanted.items()}
    for capability, found in sorted(remote.items()):
        if found is not None and found.size == 0:
            job = job_name(url.site, capability.replace(".", ""))
            raise FetchError(
                f"{url}/{ENCODER}/{VERSION}/{wanted[capability].name} is empty: its build Job "
                f"failed. Delete that object and run Job {job} again (`kubectl -n triton "
                f"delete job {job}`, then `pulumi up --refresh`); nothing was written"
            )
    folder = plans_folder(plans_dir, onnx)
    folder.mkdir(parents=True, exist_ok=True)
    total = sum(found.size for found in remote.values() if found is not None)
    done = 0
    staged: dict[str, Path] = {}
    try:
        for capability, found in sorted(remote.items()):
            if found is None:
                continue

            def progress(count: int, name: str = wanted[capability].name) -> None:
                nonlocal done
                done += count
                notify(f"{url.site} {name}", done, total)

            staged[capability] = _download(store, url, wanted[capability], found, progress)
        for capability, temporary in staged.items():
            temporary.replace(wanted[capability])
    finally:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
    gpus = config.gpu_types_on(url.site)
    statuses = []
    for capability, path in sorted(wanted.items()):
        found = remote[capability]
        statuses.append(
            PlanStatus(
                capability=capability,
                gpus=tuple(g.name for g in gpus if g.compute_capability == capability),
                plan=path,
                fetched_bytes=None if found is None else found.size,
                covered=path.is_file(),
            )
        )
    return FetchResult(str(url), url.site, folder, tuple(statuses))


def _check_graph(url: RepositoryUrl, store: ObjectStore, onnx: FileEntry) -> None:
    """The plans next to the bucket's ONNX are only good for us if it is our graph."""
    key = url.encoder_key(ENCODER_ONNX)
    found = store.stat(key)
    if found is None:
        raise FetchError(
            f"{url} holds no {ENCODER}/{VERSION}/{ENCODER_ONNX}: it is not a repository "
            f"`pulumi up` uploaded, or it serves no {ENCODER}; {_URL_HINT}"
        )
    if found.sha256 is None:
        raise FetchError(
            f"{url}/{ENCODER}/{VERSION}/{ENCODER_ONNX} has no sha256 metadata, so the graph "
            f"its plans were built from is unknown; upload repositories with `pulumi up`"
        )
    if found.sha256 != onnx.sha256:
        raise FetchError(
            f"the plans under {url} are built from encoder graph {found.sha256[:16]}, but "
            f"the current graph is {onnx.sha256[:16]}: they cannot serve it. Run `make models` "
            f"and `pulumi up` so the build Jobs run for the current graph, then fetch again"
        )


def _download(
    store: ObjectStore,
    url: RepositoryUrl,
    dest: Path,
    remote: RemoteObject,
    progress: Callable[[int], None],
) -> Path:
    """The plan in a hidden temporary file next to ``dest``, complete and checked."""
    where = f"{url}/{ENCODER}/{VERSION}/{dest.name}"
    handle, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            digest = _Digesting(out, progress)
            store.download(url.encoder_key(dest.name), remote, digest)
            out.flush()
            os.fsync(out.fileno())
        if digest.size != remote.size:
            raise FetchError(
                f"{where}: received {digest.size} of {remote.size} bytes, the download was cut "
                f"short; nothing was written, run fetch-plans again"
            )
        if remote.sha256 is not None and digest.sha256.hexdigest() != remote.sha256:
            raise FetchError(
                f"{where}: the downloaded bytes do not match its sha256 metadata; nothing was "
                f"written, run fetch-plans again"
            )
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


class _Digesting:
    """A write-only stream that hashes, counts and reports what passes through it."""

    def __init__(self, out: BinaryIO, progress: Callable[[int], None]) -> None:
        self.out, self.progress = out, progress
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.sha256.update(data)
        self.size += len(data)
        self.progress(len(data))
        return len(data)


# --- the two clouds ------------------------------------------------------------------------


def open_store(url: RepositoryUrl, config: StackConfig) -> ObjectStore:
    """A client for the site's bucket, with the caller's usual cloud credentials.

    Endpoints follow the clients' own settings (``AWS_ENDPOINT_URL_S3``,
    ``STORAGE_EMULATOR_HOST``), which is how the tests point them at emulators.
    """
    if url.scheme == "s3":
        return S3Store(url.bucket, config.public.region)
    return GcsStore(url.bucket, config.private.project)


class S3Store:
    def __init__(self, bucket: str, region: str) -> None:
        import boto3

        self.bucket = bucket
        self.client = boto3.client("s3", region_name=region)

    def stat(self, key: str) -> RemoteObject | None:
        with _s3_errors(f"s3://{self.bucket}/{key}"):
            from botocore.exceptions import ClientError

            try:
                head = self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
        return RemoteObject(
            size=int(head["ContentLength"]),
            sha256=head.get("Metadata", {}).get("sha256"),
            version=head["ETag"],
        )

    def download(self, key: str, remote: RemoteObject, out: Sink) -> None:
        with _s3_errors(f"s3://{self.bucket}/{key}"):
            # If-Match: the object sized by stat(), or a clear failure; checksum: the plan
            # Jobs upload with a SHA-256 that S3 keeps and botocore verifies here.
            response = self.client.get_object(
                Bucket=self.bucket, Key=key, IfMatch=remote.version, ChecksumMode="ENABLED"
            )
            for chunk in response["Body"].iter_chunks(_CHUNK):
                out.write(chunk)


class GcsStore:
    def __init__(self, bucket: str, project: str) -> None:
        from google.cloud import storage

        self.bucket = storage.Client(project=project).bucket(bucket)

    def stat(self, key: str) -> RemoteObject | None:
        with _gcs_errors(f"gs://{self.bucket.name}/{key}"):
            blob = self.bucket.get_blob(key)
        if blob is None:
            return None
        return RemoteObject(
            size=int(blob.size or 0),
            sha256=(blob.metadata or {}).get("sha256"),
            version=str(blob.generation),
        )

    def download(self, key: str, remote: RemoteObject, out: Sink) -> None:
        with _gcs_errors(f"gs://{self.bucket.name}/{key}"):
            # The generation sized by stat(); the client checks the object's CRC32C.
            blob = self.bucket.blob(key, generation=int(remote.version))
            blob.download_to_file(out)


@contextmanager
def _s3_errors(where: str) -> Iterator[None]:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        IncompleteReadError,
        NoCredentialsError,
        ResponseStreamingError,
    )

    try:
        yield
    except NoCredentialsError as error:
        raise FetchError(f"{where}: {error} (set AWS credentials, e.g. AWS_PROFILE)") from error
    except (IncompleteReadError, ResponseStreamingError) as error:
        raise FetchError(
            f"{where}: the download was cut short ({_brief(error)}); nothing was written, "
            f"run fetch-plans again"
        ) from error
    except (BotoCoreError, ClientError) as error:
        raise FetchError(f"{where}: {_brief(error)}; nothing was written") from error


@contextmanager
def _gcs_errors(where: str) -> Iterator[None]:
    import requests
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError
    from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

    try:
        yield
    except GoogleAuthError as error:
        raise FetchError(
            f"{where}: {error} (run `gcloud auth application-default login`)"
        ) from error
    except (GoogleAPIError, DataCorruption, InvalidResponse, requests.RequestException) as error:
        raise FetchError(f"{where}: {_brief(error)}; nothing was written") from error


def _brief(error: Any) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
