"""The ranker lives on the private site only: repository index, bucket, metrics, mTLS."""

import re
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from serving.clients import RankerClient
from serving.endpoints import Endpoint
from serving.local import stack
from serving.local.buckets import Bucket, GcsBucket, S3Bucket
from serving.local.state import LocalState
from serving.routing import Router

pytestmark = pytest.mark.local_stack

EMBEDDING = {"text_embedding"}
"""The local target serves text_embedding as one model (no ensemble steps to load)."""


def metrics(local_stack: LocalState, site: str) -> str:
    url = f"http://{local_stack.sites[site].metrics}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def counter(text: str, name: str, model: str) -> float:
    pattern = rf'^{name}\{{[^}}]*model="{model}"[^}}]*\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.MULTILINE))


def index(endpoint: Endpoint) -> dict[str, str]:
    client = endpoint.grpc_client()
    try:
        entries = client.get_model_repository_index(as_json=True).get("models", [])
    finally:
        client.close()
    return {entry["name"]: entry.get("state", "") for entry in entries}


def test_the_repository_index_holds_the_ranker_on_private_only(local_stack: LocalState) -> None:
    public = index(local_stack.sites["public"].endpoint)
    private = index(local_stack.sites["private"].endpoint)
    assert set(public) == EMBEDDING, "the public repository does not even contain ctr_ranker"
    assert set(private) == {*EMBEDDING, "ctr_ranker"}
    assert set(private.values()) == {"READY"}


def test_each_bucket_holds_only_its_sites_models(local_stack: LocalState) -> None:
    emulators = local_stack.emulators
    s3_name = emulators["s3_bucket"].removeprefix("s3://")
    buckets: dict[str, Bucket] = {
        "public": S3Bucket(
            emulators["s3"], s3_name, emulators["kms_key"], local_stack.principals[stack.ADMIN]
        ),
        "private": GcsBucket(emulators["gcs"], emulators["gcs_bucket"].removeprefix("gs://")),
    }
    for site, bucket in buckets.items():
        prefix = f"repo/{local_stack.sites[site].content_hash}/"
        folders = {key[len(prefix) :].split("/")[0] for key in bucket.sizes(prefix)}
        assert folders == set(local_stack.sites[site].endpoint.models)
        assert local_stack.sites[site].repository.endswith(prefix.rstrip("/"))
    assert all(bucket.sizes("repo/") for bucket in buckets.values())
    assert not any("ctr_ranker" in key for key in buckets["public"].sizes("repo/"))


def test_the_ranker_answers_on_private_and_counts_only_there(local_stack: LocalState) -> None:
    before = {site: metrics(local_stack, site) for site in ("public", "private")}
    router = Router([site.endpoint for site in local_stack.sites.values()], prefer=["public"])
    try:
        ranker = RankerClient(router)
        ranking = ranker.rank(7, list(range(1, 301)), ranker.neutral_context(300))
    finally:
        router.close()
    assert len(ranking) == 300
    probabilities = [p for _, p in ranking]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert np.std(probabilities) > 0.01, "the ranker discriminates between items"
    assert router.attempts[("public", "ctr_ranker")] == 0
    after = {site: metrics(local_stack, site) for site in ("public", "private")}
    for name, grew in (("nv_inference_request_success", 2), ("nv_inference_count", 300)):
        delta = counter(after["private"], name, "ctr_ranker") - counter(
            before["private"], name, "ctr_ranker"
        )
        assert delta == grew, f"{name}: 300 rows in 2 requests of <= 256 (max_batch_size)"
    assert 'model="ctr_ranker"' not in after["public"]


def test_the_private_site_refuses_clients_without_a_certificate(local_stack: LocalState) -> None:
    endpoint = local_stack.sites["private"].endpoint
    assert endpoint.tls is not None and endpoint.http is None
    anonymous = grpcclient.InferenceServerClient(
        endpoint.grpc, ssl=True, root_certificates=endpoint.tls.ca
    )
    plaintext = grpcclient.InferenceServerClient(endpoint.grpc)
    for client in (anonymous, plaintext):
        with pytest.raises(InferenceServerException):
            client.is_server_ready(client_timeout=3)
        client.close()
    assert index(endpoint), "the client certificate from state.json is accepted"


def test_every_endpoint_listens_on_loopback_only(local_stack: LocalState) -> None:
    addresses = [local_stack.emulators["s3"], local_stack.emulators["gcs"]]
    for site in local_stack.sites.values():
        addresses += [site.endpoint.grpc, site.metrics, site.endpoint.http or ""]
    assert all("127.0.0.1:" in address for address in addresses if address)
