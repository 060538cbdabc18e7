"""fetch-plans against real S3 and GCS servers (moto, fake-gcs-server), as the local mode runs them.

A served repository is laid out the way the stack leaves it: the encoder's ONNX carries
its sha256 in metadata (ModelRepositoryUpload), the plans are uploaded the way the build
Jobs upload them. What comes home must be exactly what the bucket holds, or nothing.
"""

import hashlib
import http.client
import itertools
import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from hybrid.config import load_stack_config
from hybrid.manifest import FileEntry, bytes_sha256
from hybrid.sites import SITES
from modelkit.__main__ import main
from modelkit.artifacts import ENCODER_ONNX, MINILM
from modelkit.build import build
from modelkit.errors import FetchError
from modelkit.fetch_plans import RepositoryUrl, fetch_plans, repository_urls
from modelkit.render import plans_folder
from modelkit.triton_config import CONFIG_NAME, read_config
from serving.local import emulators, processes
from serving.local.buckets import GcsBucket, S3Bucket, gcs_client
from serving.local.iam import Principal

PROD = load_stack_config("prod")
"""TensorRT on; public pools L4 (8.9) + A10G (8.6), private L4 (8.9) + A100 (8.0)."""
ENCODER = "minilm_encoder/1"
_names = itertools.count()


@dataclass(frozen=True)
class Clouds:
    s3: str
    gcs: str
    admin: Principal
    """moto enforces IAM; the operator who fetches plans reads as the account's admin."""


@pytest.fixture(scope="module")
def clouds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clouds]:
    """moto and fake-gcs-server on free 127.0.0.1 ports, for this module only."""
    logs = tmp_path_factory.mktemp("emulators")
    s3_port, gcs_port = processes.free_ports(2)
    moto, admin = emulators.start_moto(s3_port, logs / "moto.log")
    started = [moto]
    try:
        started.append(emulators.start_fake_gcs(gcs_port, logs / "fake-gcs.log"))
        yield Clouds(f"http://127.0.0.1:{s3_port}", f"http://127.0.0.1:{gcs_port}", admin)
    finally:
        for process in started:
            processes.stop(process)


@pytest.fixture
def cloud_env(clouds: Clouds, monkeypatch: pytest.MonkeyPatch) -> Clouds:
    """The clients' own endpoint settings point at the emulators (nothing else changes)."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in clouds.admin.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", clouds.s3)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", clouds.gcs)
    return clouds


Bucket = S3Bucket | GcsBucket


def new_bucket(clouds: Clouds, scheme: str) -> Bucket:
    name = f"models-{next(_names)}"
    if scheme == "s3":
        return emulators.create_public_bucket(clouds.s3, clouds.admin, name)
    return emulators.create_private_bucket(clouds.gcs, name)


def put(bucket: Bucket, key: str, data: bytes, *, sha256: str | None = None) -> None:
    """Upload like the stack does (sha256 metadata) or, without it, like a build Job does."""
    if isinstance(bucket, S3Bucket):
        extra = {"Metadata": {"sha256": sha256}} if sha256 else {"ChecksumAlgorithm": "SHA256"}
        bucket.principal.client(bucket.endpoint).put_object(
            Bucket=bucket.name,
            Key=key,
            Body=data,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=bucket.kms_key_arn,
            **extra,
        )
        return
    blob = gcs_client(bucket.endpoint).bucket(bucket.name).blob(key)
    if sha256:
        blob.metadata = {"sha256": sha256}
    blob.upload_from_string(data)


def plan_bytes(sm: str) -> bytes:
    """A few MiB of a stand-in engine per architecture (several download chunks)."""
    return random.Random(int(sm)).randbytes(3 * 2**20 + int(sm))


def served(bucket: Bucket, graph: FileEntry, plans: tuple[str, ...]) -> str:
    """A served prefix whose ONNX is ``graph``, holding plans for ``plans`` (sm numbers)."""
    prefix = f"repo/{hashlib.sha256(bucket.name.encode()).hexdigest()}"
    # fetch-plans reads only the ONNX's metadata, which ModelRepositoryUpload sets from the file.
    put(bucket, f"{prefix}/{ENCODER}/{ENCODER_ONNX}", b"onnx graph", sha256=graph.sha256)
    for sm in plans:
        put(bucket, f"{prefix}/{ENCODER}/model_sm{sm}.plan", plan_bytes(sm))
    return f"{bucket.url}/{prefix}"


GRAPH = FileEntry(bytes_sha256(b"a graph"), 7)


def leftovers(plans_dir: Path) -> list[str]:
    return sorted(p.name for p in plans_dir.rglob("*") if p.is_file())


def test_plans_come_home_from_both_clouds_and_the_next_render_serves_them(
    cloud_env, built, tmp_path
) -> None:
    graph = built.artifacts[MINILM].files[ENCODER_ONNX]
    public = served(new_bucket(cloud_env, "s3"), graph, ("86", "89"))
    private = served(new_bucket(cloud_env, "gs"), graph, ("80", "89"))
    reports: list[tuple[str, int, int]] = []
    plans_dir = tmp_path / "plans"
    results = [
        fetch_plans(url, PROD, graph, plans_dir=plans_dir, report=lambda *r: reports.append(r))
        for url in (public, private)
    ]
    folder = plans_folder(plans_dir, graph)
    assert [r.site for r in results] == ["public", "private"]
    for result in results:
        assert result.folder == folder and not result.missing
        for status in result.plans:
            sm = status.capability.replace(".", "")
            assert status.fetched_bytes == len(plan_bytes(sm))
            assert status.plan.read_bytes() == plan_bytes(sm)
    assert leftovers(plans_dir) == ["model_sm80.plan", "model_sm86.plan", "model_sm89.plan"]
    public_reports = [r for r in reports if r[0].startswith("public")]
    assert (
        public_reports[-1][1]
        == public_reports[-1][2]
        == sum(len(plan_bytes(sm)) for sm in ("86", "89"))
    )
    assert [done for _, done, _ in public_reports] == sorted(done for _, done, _ in public_reports)

    rendered = build("prod", targets=list(SITES), out=tmp_path / "repos", plans_dir=plans_dir)
    for target in rendered.targets:
        config = read_config(target.path / "minilm_encoder" / CONFIG_NAME, "minilm_encoder")
        assert config.platform == "tensorrt_plan"
        for name in config.cc_model_filenames.values():
            sm = name.removeprefix("model_sm").removesuffix(".plan")
            assert target.manifest.files[f"{ENCODER}/{name}"].sha256 == bytes_sha256(plan_bytes(sm))


def test_an_architecture_whose_job_has_not_finished_is_reported_missing(cloud_env, tmp_path):
    url = served(new_bucket(cloud_env, "s3"), GRAPH, ("89",))
    result = fetch_plans(url, PROD, GRAPH, plans_dir=tmp_path)
    assert [(s.capability, s.gpus, s.covered) for s in result.plans] == [
        ("8.6", ("a10g",), False),
        ("8.9", ("l4",), True),
    ]
    assert [s.capability for s in result.missing] == ["8.6"]
    assert result.plans[0].fetched_bytes is None
    assert leftovers(tmp_path) == ["model_sm89.plan"]


@pytest.mark.parametrize(
    ("scheme", "sm", "site"), [("s3", "86", "public"), ("gs", "80", "private")]
)
def test_an_empty_plan_is_refused_and_nothing_is_written(cloud_env, tmp_path, scheme, sm, site):
    bucket = new_bucket(cloud_env, scheme)
    url = served(bucket, GRAPH, ("89",))
    put(bucket, f"{RepositoryUrl.parse(url).prefix}/{ENCODER}/model_sm{sm}.plan", b"")
    with pytest.raises(
        FetchError, match=rf"model_sm{sm}\.plan is empty.*tensorrt-plan-{site}-sm{sm}"
    ):
        fetch_plans(url, PROD, GRAPH, plans_dir=tmp_path)
    assert leftovers(tmp_path) == []


class _CutPlanBodies(BaseHTTPRequestHandler):
    """A proxy in front of moto that announces a plan's full length but sends half of it."""

    protocol_version = "HTTP/1.1"
    upstream = ""

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        target = urlparse(self.upstream)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        connection.request(self.command, self.path, body, dict(self.headers))
        response = connection.getresponse()
        data = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "GET" and urlparse(self.path).path.endswith(".plan"):
            data = data[: len(data) // 2]
        if self.command != "HEAD":
            self.wfile.write(data)
        self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = _forward

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_download_cut_short_is_refused_and_nothing_is_written(
    cloud_env, tmp_path, monkeypatch
) -> None:
    url = served(new_bucket(cloud_env, "s3"), GRAPH, ("86", "89"))
    handler = type("Cut", (_CutPlanBodies,), {"upstream": cloud_env.s3})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{proxy.server_port}")
        with pytest.raises(FetchError, match=r"model_sm86\.plan: the download was cut short"):
            fetch_plans(url, PROD, GRAPH, plans_dir=tmp_path)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert leftovers(tmp_path) == []


def test_a_plan_that_differs_from_its_recorded_sha256_is_refused(cloud_env, tmp_path) -> None:
    bucket = new_bucket(cloud_env, "gs")
    url = served(bucket, GRAPH, ("80",))
    key = f"{RepositoryUrl.parse(url).prefix}/{ENCODER}/model_sm89.plan"
    put(bucket, key, plan_bytes("89"), sha256=bytes_sha256(b"something else"))
    with pytest.raises(FetchError, match=r"model_sm89\.plan: the downloaded bytes do not match"):
        fetch_plans(url, PROD, GRAPH, plans_dir=tmp_path)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("scheme", ["s3", "gs"])
@pytest.mark.parametrize(
    ("onnx", "message"),
    [
        ("other-graph", r"built from encoder graph [0-9a-f]{16}, but the current graph is"),
        ("no-metadata", r"has no sha256 metadata"),
        ("no-onnx", r"holds no minilm_encoder/1/model\.onnx"),
    ],
)
def test_plans_that_cannot_be_tied_to_the_current_graph_are_refused(
    cloud_env, tmp_path, scheme, onnx, message
) -> None:
    bucket = new_bucket(cloud_env, scheme)
    prefix = f"repo/{'a' * 64}"
    if onnx != "no-onnx":
        sha = bytes_sha256(b"an older graph") if onnx == "other-graph" else None
        put(bucket, f"{prefix}/{ENCODER}/{ENCODER_ONNX}", b"onnx", sha256=sha)
    for sm in ("80", "86", "89"):
        put(bucket, f"{prefix}/{ENCODER}/model_sm{sm}.plan", plan_bytes(sm))
    with pytest.raises(FetchError, match=message):
        fetch_plans(f"{bucket.url}/{prefix}", PROD, GRAPH, plans_dir=tmp_path)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://bucket/repo/abc",
        "s3://bucket/models/abc",
        "s3://bucket/repo/",
        "gs:///repo/abc",
        "s3://bucket/repo/abc/minilm_encoder",
        "bucket/repo/abc",
    ],
)
def test_a_url_that_is_not_a_served_repository_is_refused(url: str) -> None:
    with pytest.raises(FetchError, match=r"not a served model repository.*stack output"):
        RepositoryUrl.parse(url)


def test_a_served_repository_url_names_its_site_and_keys() -> None:
    url = RepositoryUrl.parse("gs://bucket/repo/abc/")
    assert (url.site, str(url)) == ("private", "gs://bucket/repo/abc")
    assert url.encoder_key("model_sm89.plan") == "repo/abc/minilm_encoder/1/model_sm89.plan"
    assert RepositoryUrl.parse("s3://b/repo/abc").site == "public"


def test_the_stack_output_gives_the_urls() -> None:
    output = json.dumps({"public": "s3://a/repo/1", "private": "gs://b/repo/2"})
    assert repository_urls(output) == ["gs://b/repo/2", "s3://a/repo/1"]
    for bad in ("", "[1, 2]", '{"public": 3}', "error: no stack selected"):
        with pytest.raises(FetchError, match="pulumi stack output modelRepositories --json"):
            repository_urls(bad)


def test_the_cli_reports_coverage_and_exits_1_until_every_architecture_has_a_plan(
    cloud_env, built, tmp_path, capsys
) -> None:
    graph = built.artifacts[MINILM].files[ENCODER_ONNX]
    public_bucket = new_bucket(cloud_env, "s3")
    public = served(public_bucket, graph, ("89",))
    private = served(new_bucket(cloud_env, "gs"), graph, ("80", "89"))
    output = tmp_path / "outputs.json"
    output.write_text(json.dumps({"public": public, "private": private}))
    argv = ["fetch-plans", "--stack", "prod", "--plans-dir", str(tmp_path / "plans")]

    assert main([*argv, "--stack-output", str(output), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["graph"] == graph.sha256[:16]
    missing = {
        site: [capability for capability, plan in body["plans"].items() if not plan["covered"]]
        for site, body in report["sites"].items()
    }
    assert missing == {"public": ["8.6"], "private": []}

    sm86 = f"{RepositoryUrl.parse(public).prefix}/{ENCODER}/model_sm86.plan"
    put(public_bucket, sm86, plan_bytes("86"))  # its Job has finished now
    assert main([*argv, public]) == 0
    out = capsys.readouterr().out
    assert "every GPU architecture is covered" in out and "make models STACK=prod" in out
    assert leftovers(tmp_path / "plans") == [
        "model_sm80.plan",
        "model_sm86.plan",
        "model_sm89.plan",
    ]


def test_the_cli_needs_urls_and_says_where_they_come_from(capsys) -> None:
    assert main(["fetch-plans", "--stack", "prod"]) == 2
    error = capsys.readouterr().err
    assert "modelRepositories" in error and "Traceback" not in error
