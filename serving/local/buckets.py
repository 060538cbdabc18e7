"""The two emulated buckets behind one small interface: put, read, list, encryption.

The uploader works against `Bucket` and never knows which cloud it talks to; each
implementation also reports how an object is encrypted so that the uploader can refuse
one that is not (moto cannot evaluate the bucket policy's encryption conditions).
"""

import io
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError

# google-api-core warns on every import about Python 3.11's end of life (2027); the
# pinned venv is 3.11 by design, and the warning buries the local mode's own output.
warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")

from google.api_core.client_options import ClientOptions  # noqa: E402
from google.auth.credentials import AnonymousCredentials  # noqa: E402
from google.cloud import storage  # noqa: E402

from serving.errors import AccessDeniedError  # noqa: E402
from serving.local.iam import Principal  # noqa: E402

CHUNK = 1 << 20
DENIED = {"AccessDenied", "403"}
"""S3's error codes for a refusal: a HEAD, or a bucket-policy Deny in moto, has no body."""


class Bucket(Protocol):
    @property
    def url(self) -> str:
        """`s3://<bucket>` or `gs://<bucket>`: what the object keys are relative to."""
        ...

    def put(self, key: str, source: Path, sha256: str, sent: Callable[[int], None]) -> None:
        """Upload `source`; `sent(n)` is called as bytes go out (for the progress bar)."""
        ...

    def read(self, key: str) -> Iterator[bytes]: ...

    def sizes(self, prefix: str) -> dict[str, int]: ...

    def encryption_problem(self, key: str) -> str | None:
        """Why the object is not encrypted as the bucket requires, or None when it is."""
        ...


@dataclass(frozen=True)
class S3Bucket:
    """A bucket on moto's S3, as one principal sees it; every put names the KMS key (the
    bucket policy demands it)."""

    endpoint: str
    name: str
    kms_key_arn: str
    principal: Principal
    """Who sends the requests: moto checks each against this user's identity policies."""

    @property
    def url(self) -> str:
        return f"s3://{self.name}"

    @property
    def arn(self) -> str:
        return f"arn:aws:s3:::{self.name}"

    def put(self, key: str, source: Path, sha256: str, sent: Callable[[int], None]) -> None:
        with self._refusal("s3:PutObject", key, "PutObject"):
            self._client().upload_file(
                str(source),
                self.name,
                key,
                Callback=sent,
                ExtraArgs={
                    "ServerSideEncryption": "aws:kms",
                    "SSEKMSKeyId": self.kms_key_arn,
                    "Metadata": {"sha256": sha256},
                },
            )

    def read(self, key: str) -> Iterator[bytes]:
        with self._refusal("s3:GetObject", key, "GetObject"):
            body = self._client().get_object(Bucket=self.name, Key=key)["Body"]
            yield from body.iter_chunks(CHUNK)

    def sizes(self, prefix: str) -> dict[str, int]:
        with self._refusal("s3:ListBucket", None, f"ListObjectsV2 prefix={prefix}"):
            pages = (
                self._client()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=self.name, Prefix=prefix)
            )
            return {
                item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])
            }

    def encryption_problem(self, key: str) -> str | None:
        with self._refusal("s3:GetObject", key, "HeadObject"):
            head = self._client().head_object(Bucket=self.name, Key=key)
        algorithm, key_id = head.get("ServerSideEncryption"), head.get("SSEKMSKeyId", "")
        if algorithm != "aws:kms" or not self.kms_key_arn.endswith(key_id.split("/")[-1]):
            found = f"{algorithm or 'no encryption'} {key_id}".strip()
            return f"encrypted with {found}, not SSE-KMS under the bucket's key"
        return None

    @contextmanager
    def _refusal(self, action: str, key: str | None, operation: str) -> Iterator[None]:
        """S3's refusal as who was refused what: moto's own error names neither."""
        try:
            yield
        except (ClientError, S3UploadFailedError) as error:
            cause = error.__context__ if isinstance(error, S3UploadFailedError) else error
            if not (isinstance(cause, ClientError) and cause.response["Error"]["Code"] in DENIED):
                raise
            resource = f"{self.arn}/{key}" if key is not None else self.arn
            raise AccessDeniedError(
                f"{self.principal.arn} was refused {action} on {resource} ({operation}: "
                f"{cause}). Its identity policy and the bucket policy are the documents the "
                "stack renders (hybrid.bucket_access)."
            ) from error

    def _client(self) -> Any:
        return self.principal.client(self.endpoint)


@dataclass(frozen=True)
class GcsBucket:
    """A bucket on fake-gcs-server (which has no KMS: the cloud path adds CMEK)."""

    endpoint: str
    name: str

    @property
    def url(self) -> str:
        return f"gs://{self.name}"

    def put(self, key: str, source: Path, sha256: str, sent: Callable[[int], None]) -> None:
        blob = self._bucket().blob(key, chunk_size=8 * CHUNK)  # resumable, chunk by chunk
        blob.metadata = {"sha256": sha256}
        with source.open("rb") as stream:
            blob.upload_from_file(_Counting(stream, sent), size=source.stat().st_size)

    def read(self, key: str) -> Iterator[bytes]:
        with self._bucket().blob(key).open("rb", chunk_size=CHUNK) as stream:
            while chunk := stream.read(CHUNK):
                yield chunk

    def sizes(self, prefix: str) -> dict[str, int]:
        return {blob.name: blob.size or 0 for blob in self._bucket().list_blobs(prefix=prefix)}

    def encryption_problem(self, key: str) -> str | None:
        return None

    def _bucket(self) -> storage.Bucket:
        return gcs_client(self.endpoint).bucket(self.name)


def gcs_client(endpoint: str) -> storage.Client:
    return storage.Client(
        project="hybrid-local",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=endpoint),
    )


class _Counting(io.RawIOBase):
    """A read-only file that reports every read: google-cloud-storage has no upload callback."""

    def __init__(self, stream: BinaryIO, sent: Callable[[int], None]) -> None:
        self.stream = stream
        self.sent = sent

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.sent(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self.stream.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.stream.seek(offset, whence)

    def seekable(self) -> bool:
        return True
