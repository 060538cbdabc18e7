"""Placement: public-site objects never name a private-only model."""

from infra.offline import MockedResource
from policy.engine import stack_view
from policy.placement import PRIVATE_MODELS_STAY_PRIVATE, is_public_site, model_pattern
from tests.policy.builders import PRIVATE_K8S_PROVIDER, PUBLIC_K8S_PROVIDER, messages, resource

CONFIG = {"privateOnlyModels": ["ctr_ranker"]}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def triton(name: str, models: list[str], provider: str) -> MockedResource:
    args = ["--model-control-mode=explicit", *(f"--load-model={m}" for m in models)]
    spec = {"template": {"spec": {"containers": [{"name": "triton", "args": args}]}}}
    return resource(DEPLOYMENT, name, {"metadata": {"name": name}, "spec": spec}, provider=provider)


def test_public_objects_of_shared_models_pass() -> None:
    resources = [
        triton(
            "public-triton", ["tokenizer", "minilm_encoder", "text_embedding"], PUBLIC_K8S_PROVIDER
        ),
        # The private site may serve the private-only model, and name it anywhere.
        triton("private-triton", ["text_embedding", "ctr_ranker"], PRIVATE_K8S_PROVIDER),
        resource(
            "gcp:storage/bucketObject:BucketObject",
            "obj",
            {"name": "repo/abc/ctr_ranker/config.pbtxt"},
        ),
        # Names that merely contain the model's name as a part of a longer word are fine.
        resource("aws:s3/bucketObjectv2:BucketObjectv2", "doc", {"key": "repo/abc/ctr_rankers.md"}),
    ]
    assert messages(PRIVATE_MODELS_STAY_PRIVATE, *resources, config=CONFIG) == []


def test_public_references_to_private_models_fail() -> None:
    resources = [
        triton("public-triton", ["text_embedding", "ctr_ranker"], PUBLIC_K8S_PROVIDER),
        resource(
            "aws:s3/bucketObjectv2:BucketObjectv2",
            "leak",
            {"bucket": "models", "key": "repo/abc/ctr_ranker/1/model.py"},
        ),
        resource(
            "kubernetes:core/v1:ConfigMap",
            "ctr-ranker-config",
            {"metadata": {"name": "ctr-ranker-config"}},
            provider=PUBLIC_K8S_PROVIDER,
        ),
    ]
    assert messages(PRIVATE_MODELS_STAY_PRIVATE, *resources, config=CONFIG) == [
        "kubernetes:apps/v1:Deployment 'public-triton' on the public site references "
        "private-only model 'ctr_ranker' ('--load-model=ctr_ranker')",
        "aws:s3/bucketObjectv2:BucketObjectv2 'leak' on the public site references private-only "
        "model 'ctr_ranker' ('repo/abc/ctr_ranker/1/model.py')",
        "kubernetes:core/v1:ConfigMap 'ctr-ranker-config' on the public site references "
        "private-only model 'ctr_ranker' ('ctr-ranker-config')",
    ]


def test_without_the_model_list_the_policy_fails_closed() -> None:
    assert messages(PRIVATE_MODELS_STAY_PRIVATE, triton("t", [], PUBLIC_K8S_PROVIDER)) == [
        "the pack was not told which models are private-only (policy config "
        "'privateOnlyModels'); run it through `pulumi preview --policy-pack policy`, which "
        "reads them from the stack config, or pass --policy-pack-config"
    ]


def test_sites() -> None:
    graph = stack_view(
        [
            triton("pub", [], PUBLIC_K8S_PROVIDER),
            triton("priv", [], PRIVATE_K8S_PROVIDER),
            resource("aws:kms/key:Key", "key"),
            resource("gcp:kms/cryptoKey:CryptoKey", "ck"),
            resource(
                "random:index/randomPassword:RandomPassword",
                "psk",
                parents=("hybrid:hybrid_vpn:HybridVpn",),
            ),
        ]
    )
    assert {r.name: is_public_site(r) for r in graph.values()} == {
        "pub": True,
        "priv": False,
        "key": True,
        "ck": False,
        "psk": False,
    }


def test_model_pattern() -> None:
    pattern = model_pattern("ctr_ranker")
    assert pattern.search("--load-model=ctr_ranker")
    assert pattern.search("triton-ctr-ranker")
    assert not pattern.search("ctr_rankerv2")
    assert not pattern.search("xctr_ranker")
