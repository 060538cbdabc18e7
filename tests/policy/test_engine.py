"""The in-process engine hands policies what the Pulumi engine would."""

from collections.abc import Mapping

import pytest
from pulumi_policy.proxy import UnknownValueError

from infra.offline import UNKNOWN
from policy.engine import engine_props, evaluate
from policy.storage import KMS_KEY_ROTATION, S3_BUCKET_HARDENED
from tests.policy.builders import resource, violations


def test_props_cross_the_wire() -> None:
    props = engine_props(
        {"count": 3, "nested": {"list": [1, "a", None]}, "psk": "s3cret", "later": UNKNOWN},
        secret_keys=frozenset({"psk"}),
    )
    assert isinstance(props, Mapping)
    assert props["count"] == 3.0 and isinstance(props["count"], float)
    assert list(props["nested"]["list"]) == [1.0, "a", None]
    assert props["psk"] == "s3cret"  # secrets arrive unwrapped, as the SDK deserializes them
    with pytest.raises(UnknownValueError):
        props["later"]


def test_an_unknown_value_makes_an_advisory_note_not_a_pass_or_a_failure() -> None:
    key = resource("aws:kms/key:Key", "key", {"enableKeyRotation": UNKNOWN})
    [note] = violations(KMS_KEY_ROTATION, key)
    assert (note.enforcement, note.urn) == ("advisory", key.urn)
    assert note.message == (
        "can't run policy 'kms-key-rotation' during preview: string value at "
        ".enableKeyRotation can't be known during preview"
    )


def test_the_stack_can_lower_or_disable_a_policy() -> None:
    key = resource("aws:kms/key:Key", "key", {"enableKeyRotation": False})
    [mandatory] = violations(KMS_KEY_ROTATION, key)
    assert mandatory.mandatory and mandatory.severity == "high"
    assert mandatory.resource == "aws:kms/key:Key::key"
    [lowered] = violations(KMS_KEY_ROTATION, key, config={"enforcementLevel": "advisory"})
    assert not lowered.mandatory
    assert violations(KMS_KEY_ROTATION, key, config={"enforcementLevel": "disabled"}) == []


def test_stack_policies_see_outputs_and_resource_policies_inputs() -> None:
    # The bucket's name exists only as an output (the provider picks it).
    bucket = resource("aws:s3/bucket:Bucket", "b", {}, outputs={"bucket": "b-123"})
    [first, *_] = evaluate([bucket], [S3_BUCKET_HARDENED])
    assert first.message.startswith("S3 bucket 'b': no BucketServerSideEncryptionConfiguration")
    assert first.urn == bucket.urn


def test_component_resources_are_not_analyzed() -> None:
    component = resource("aws:kms/key:Key", "looks-like-a-key", {"enableKeyRotation": False})
    component = type(component)(**{**component.__dict__, "custom": False})
    assert evaluate([component], [KMS_KEY_ROTATION]) == []
