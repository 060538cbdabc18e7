"""Each fabricator family, on one resource alone: the outputs look like the provider's."""

import re

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pulumi_tls as tls

from infra.offline import UNKNOWN, evaluate_component


def test_aws_resources_get_arns_in_the_stack_account_and_region() -> None:
    ev = evaluate_component(lambda: aws.kms.Key("key", description="k"))
    key = ev.one("aws:kms/key:Key", "key")
    region = ev.config.public.region
    assert re.fullmatch(rf"arn:aws:kms:{region}:\d{{12}}:key/.+", key.outputs["arn"]), key.outputs


def test_gcp_resources_get_links_in_the_stack_project() -> None:
    ev = evaluate_component(lambda: gcp.compute.Network("net", auto_create_subnetworks=False))
    network = ev.one("gcp:compute/network:Network", "net")
    project = ev.config.private.project
    assert network.id == f"projects/{project}/global/networks/{network.outputs['name']}"
    assert network.outputs["selfLink"].endswith(network.id)


def test_tls_keys_are_pem() -> None:
    ev = evaluate_component(lambda: tls.PrivateKey("key", algorithm="ECDSA"))
    key = ev.one("tls:index/privateKey:PrivateKey", "key")
    assert key.outputs["privateKeyPem"].startswith("-----BEGIN PRIVATE KEY-----")


def test_invokes_answer_with_the_stack_account() -> None:
    def call() -> None:
        identity = aws.get_caller_identity_output()
        pulumi.export("account", identity.account_id)

    ev = evaluate_component(call)
    assert re.fullmatch(r"\d{12}", ev.outputs["account"]), ev.outputs


def test_preview_leaves_computed_outputs_unknown() -> None:
    ev = evaluate_component(lambda: aws.kms.Key("key", description="k"), preview=True)
    key = ev.one("aws:kms/key:Key", "key")
    assert key.id == "" and key.inputs["description"] == "k"
    assert key.outputs["arn"] is UNKNOWN, key.outputs
