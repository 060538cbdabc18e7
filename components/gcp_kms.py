"""Customer-managed keys on GCP that a Google service agent encrypts with on our behalf."""

import pulumi
import pulumi_gcp as gcp

KEY_ROTATION = "7776000s"  # 90 days


def agent_key(
    parent: pulumi.Resource,
    *,
    ring: str,
    key: str,
    grant: str,
    location: str,
    agent: pulumi.Input[str],
    protect: bool,
) -> tuple[gcp.kms.CryptoKey, gcp.kms.CryptoKeyIAMMember]:
    """A rotating key in a key ring of its own, usable by ``agent`` (an IAM member).

    GCS and GKE refuse a CMEK key their service agent cannot use, so whatever is encrypted
    with the key must depend on the returned grant, not only on the key.
    """
    key_ring = gcp.kms.KeyRing(ring, location=location, opts=pulumi.ResourceOptions(parent=parent))
    crypto_key = gcp.kms.CryptoKey(
        key,
        key_ring=key_ring.id,
        purpose="ENCRYPT_DECRYPT",
        rotation_period=KEY_ROTATION,
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )
    member = gcp.kms.CryptoKeyIAMMember(
        grant,
        crypto_key_id=crypto_key.id,
        role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
        member=agent,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return crypto_key, member
