"""ModelRepositoryUpload under the real program: what lands in each bucket, under which prefix,
how old prefixes expire, and how a stale or missing rendering stops the run."""

import random
import re
import shutil
from pathlib import Path

import pytest

from components.repository_retention import HEX_DIGITS, RETENTION_DEPTH, retired_prefixes
from hybrid.config import load_stack_config
from hybrid.manifest import MANIFEST_NAME, Manifest
from hybrid.sites import SITES
from infra.offline import evaluate_stack
from tests.components.serving_support import (
    STACKS,
    container,
    copy_repos,
    evaluation,
    flag_values,
    rendered_repos,
    repository_override,
    site_manifest,
)

pytestmark = pytest.mark.usefixtures("rendered_repositories")

OBJECT_TYPES = {
    "public": "aws:s3/bucketObjectv2:BucketObjectv2",
    "private": "gcp:storage/bucketObject:BucketObject",
}
BUCKET_TYPES = {"public": "aws:s3/bucket:Bucket", "private": "gcp:storage/bucket:Bucket"}


def rehash(folder: Path) -> None:
    """Record a hand-edited rendering in its manifest, keeping what its models call."""
    old = Manifest.read(folder)
    new = Manifest.of_directory(folder, target=old.target, stack=old.stack)
    files, calls, profiles = new.files, old.calls, old.profiles
    Manifest.build(old.target, old.stack, new.models, files, calls, profiles).write(folder)


def uploaded(stack: str, site: str) -> dict[str, dict]:
    """Object key -> inputs, for every model object uploaded on ``site``."""
    objects = evaluation(stack).of_type(OBJECT_TYPES[site])
    key = "key" if site == "public" else "name"
    return {o.inputs[key]: o.inputs for o in objects if o.name.startswith(f"{site}-repository-")}


def model_bucket(stack: str, site: str):
    """The one bucket of the site that the upload writes to."""
    buckets = {inputs["bucket"] for inputs in uploaded(stack, site).values()}
    assert len(buckets) == 1, f"{site} objects go to several buckets: {buckets}"
    (name,) = buckets
    matches = [
        b
        for b in evaluation(stack).of_type(BUCKET_TYPES[site])
        if b.outputs.get("bucket", b.outputs.get("name")) == name
    ]
    assert len(matches) == 1, f"no {BUCKET_TYPES[site]} named {name}"
    return matches[0]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("site", SITES)
def test_every_file_of_the_site_manifest_is_uploaded_under_its_content_hash(stack, site):
    manifest = site_manifest(stack, site)
    objects = uploaded(stack, site)
    assert set(objects) == {f"repo/{manifest.content_hash}/{path}" for path in manifest.files}
    for key, inputs in objects.items():
        path = key.removeprefix(manifest.prefix)
        assert inputs["metadata"] == {"sha256": manifest.files[path].sha256}, key
        assert Path(inputs["source"].path) == rendered_repos() / site / path


@pytest.mark.parametrize("stack", STACKS)
def test_s3_objects_are_encrypted_with_the_bucket_cmk_and_checksummed(stack):
    bucket = model_bucket(stack, "public")
    encryption = [
        r
        for r in evaluation(stack).of_type(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )
        if r.inputs["bucket"] == bucket.outputs["bucket"]
    ]
    (rule,) = encryption[0].inputs["rules"]
    bucket_cmk = rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
    for key, inputs in uploaded(stack, "public").items():
        assert inputs["serverSideEncryption"] == "aws:kms", key
        assert inputs["kmsKeyId"] == bucket_cmk, key
        assert inputs["bucketKeyEnabled"] is True, key
        assert inputs["checksumAlgorithm"] == "SHA256", key


@pytest.mark.parametrize("stack", STACKS)
def test_gcs_objects_use_the_bucket_cmek(stack):
    bucket = model_bucket(stack, "private")
    cmek = bucket.inputs["encryption"]["defaultKmsKeyName"]
    for key, inputs in uploaded(stack, "private").items():
        assert inputs["kmsKeyName"] == cmek, key


@pytest.mark.parametrize("stack", STACKS)
def test_no_private_only_model_reaches_the_public_bucket(stack):
    private_only = load_stack_config(stack).private_only_models()
    assert private_only, "the stack should place at least one model on the private site only"
    for key in uploaded(stack, "public"):
        model = key.split("/")[2]
        assert model not in private_only, key
    private_models = {key.split("/")[2] for key in uploaded(stack, "private")}
    assert set(private_only) <= private_models


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("site", SITES)
def test_triton_reads_exactly_the_uploaded_prefix(stack, site):
    manifest = site_manifest(stack, site)
    bucket = model_bucket(stack, site)
    name = bucket.outputs.get("bucket", bucket.outputs.get("name"))
    scheme = "s3" if site == "public" else "gs"
    (repository,) = flag_values(container(evaluation(stack), site)["args"], "model-repository")
    assert repository == f"{scheme}://{name}/repo/{manifest.content_hash}"


def test_retired_prefixes_cover_every_other_hash_and_never_the_served_one():
    rng = random.Random(7)
    for _ in range(200):
        served = "".join(rng.choice(HEX_DIGITS) for _ in range(64))
        prefixes = retired_prefixes(served)
        assert len(prefixes) == len(set(prefixes)) == RETENTION_DEPTH * 15
        assert not any(f"repo/{served}/".startswith(p) for p in prefixes)
        other = "".join(rng.choice(HEX_DIGITS) for _ in range(64))
        matching = [p for p in prefixes if f"repo/{other}/".startswith(p)]
        expected = 0 if other[:RETENTION_DEPTH] == served[:RETENTION_DEPTH] else 1
        assert len(matching) == expected, (served, other)


@pytest.mark.parametrize("stack", STACKS)
def test_s3_lifecycle_expires_retired_prefixes_only(stack):
    config = load_stack_config(stack)
    served = site_manifest(stack, "public").content_hash
    bucket = model_bucket(stack, "public").outputs["bucket"]
    (lifecycle,) = [
        r
        for r in evaluation(stack).of_type(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
        )
        if r.inputs["bucket"] == bucket
    ]
    expiring = [rule for rule in lifecycle.inputs["rules"] if "days" in rule.get("expiration", {})]
    assert {rule["filter"]["prefix"] for rule in expiring} == set(retired_prefixes(served))
    for rule in expiring:
        assert rule["status"] == "Enabled"
        assert rule["expiration"]["days"] == config.serving.retention_days
        assert not f"repo/{served}/".startswith(rule["filter"]["prefix"])
    # Nothing else in the bucket's lifecycle deletes current objects under the served prefix.
    others = [rule for rule in lifecycle.inputs["rules"] if rule not in expiring]
    for rule in others:
        assert "days" not in rule.get("expiration", {}), rule


@pytest.mark.parametrize("stack", STACKS)
def test_gcs_lifecycle_expires_retired_prefixes_only(stack):
    config = load_stack_config(stack)
    served = site_manifest(stack, "private").content_hash
    rules = model_bucket(stack, "private").inputs["lifecycleRules"]
    under_repo = [
        rule
        for rule in rules
        if "age" in rule["condition"]
        and all(p.startswith("repo/") for p in rule["condition"].get("matchesPrefixes", [""]))
    ]
    (expire,) = under_repo
    assert expire["action"]["type"] == "Delete"
    assert expire["condition"]["age"] == config.serving.retention_days
    assert set(expire["condition"]["matchesPrefixes"]) == set(retired_prefixes(served))


def test_a_changed_model_gives_a_new_prefix_and_rolls_the_deployment(tmp_path):
    stack = "dev"
    root = copy_repos(tmp_path / "repos")
    config_file = root / "public" / "minilm_encoder" / "config.pbtxt"
    config_file.write_text(config_file.read_text() + "\n# changed\n")
    rehash(root / "public")
    changed = evaluate_stack(stack, config_overrides=repository_override(root))
    before = container(evaluation(stack), "public")
    after = container(changed, "public")
    old = flag_values(before["args"], "model-repository")[0]
    new = flag_values(after["args"], "model-repository")[0]
    assert old != new and re.fullmatch(r"s3://[^/]+/repo/[0-9a-f]{64}", new)
    keys = {r.inputs["key"] for r in changed.of_type(OBJECT_TYPES["public"])}
    assert all(key.startswith(new.split("/", 3)[3] + "/") for key in keys)
    # The private site did not change, so it neither re-uploads nor rolls.
    assert container(evaluation(stack), "private") == container(changed, "private")


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda root: (root / "public" / MANIFEST_NAME).unlink(), r"manifest\.json does not exist"),
        (
            lambda root: (root / "public" / "tokenizer" / "config.pbtxt").write_text("edited\n"),
            r"tokenizer/config\.pbtxt does not match manifest\.json",
        ),
        (
            lambda root: (root / "private" / "ctr_ranker" / "config.pbtxt").unlink(),
            r"ctr_ranker/config\.pbtxt is listed in manifest\.json but missing",
        ),
    ],
    ids=["missing-manifest", "stale-file", "missing-file"],
)
def test_a_missing_or_stale_rendering_stops_the_run_with_the_fix(tmp_path, tamper, message):
    root = copy_repos(tmp_path / "repos")
    tamper(root)
    with pytest.raises(Exception, match=message) as error:
        evaluate_stack("dev", config_overrides=repository_override(root))
    assert "make models" in str(error.value)


def test_a_rendering_without_a_placed_model_is_refused(tmp_path):
    root = copy_repos(tmp_path / "repos")
    shutil.rmtree(root / "private" / "ctr_ranker")
    rehash(root / "private")
    with pytest.raises(Exception, match=r"no model\(s\) \['ctr_ranker'\].*make models"):
        evaluate_stack("dev", config_overrides=repository_override(root))


def test_a_rendering_with_plans_for_other_gpus_is_refused(tmp_path):
    """prod's public pools are L4 and A10G: a plan rendered for dev's T4 alone cannot serve them."""
    root = copy_repos(tmp_path / "repos")
    (root / "public" / "minilm_encoder" / "1" / "model_sm75.plan").write_bytes(b"engine")
    rehash(root / "public")
    with pytest.raises(
        Exception,
        match=r"need \['model_sm86\.plan', 'model_sm89\.plan'\].*make models STACK=prod",
    ):
        evaluate_stack("prod", config_overrides=repository_override(root))


def test_a_rendering_with_plans_is_refused_where_the_stack_serves_onnx(tmp_path):
    """dev keeps TensorRT off: a rendering made with plans on does not match its config."""
    root = copy_repos(tmp_path / "repos")
    (root / "public" / "minilm_encoder" / "1" / "model_sm75.plan").write_bytes(b"engine")
    rehash(root / "public")
    with pytest.raises(Exception, match=r"stack 'dev' serves ONNX.*make models STACK=dev"):
        evaluate_stack("dev", config_overrides=repository_override(root))
