"""Fabricated outputs of the random and tls resources, and of the explicit providers."""

from typing import Any

from infra.offline.registry import FabricatingMocks, fabricates


@fabricates("random:index/randomPassword:RandomPassword")
def _random_password(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    """Honours length and the special-character set. Starts with '0' on purpose: AWS refuses
    VPN keys that do, so the program must cope with it."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    alphabet += inputs.get("overrideSpecial", "") if inputs.get("special", True) else ""
    stream = bytes.fromhex(mocks.digest("password", name) * 4)
    length = int(inputs.get("length", 16))
    body = "".join(alphabet[b % len(alphabet)] for b in stream)
    result = ("0Aa7" + body)[:length]
    return "none", {
        "result": result,
        "bcryptHash": "$2a$10$" + mocks.hex("bcrypt", name, length=53),
    }


@fabricates("tls:index/privateKey:PrivateKey")
def _private_key(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return mocks.hex("key-id", name, length=40), {
        "privateKeyPem": mocks.pem("PRIVATE KEY", "private", name),
        "privateKeyPemPkcs8": mocks.pem("PRIVATE KEY", "private", name),
        "publicKeyPem": mocks.pem("PUBLIC KEY", "public", name),
        "publicKeyFingerprintSha256": "SHA256:" + mocks.hex("fp", name, length=43),
    }


@fabricates(
    "tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"
)
def _certificate(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return str(int(mocks.hex("serial", name, length=30), 16)), {
        "certPem": mocks.pem("CERTIFICATE", "cert", name),
        "validityStartTime": "2025-01-01T00:00:00Z",
        "validityEndTime": "2026-01-01T00:00:00Z",
        "readyForRenewal": False,
    }


@fabricates("tls:index/certRequest:CertRequest")
def _cert_request(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return mocks.hex("csr", name, length=40), {
        "certRequestPem": mocks.pem("CERTIFICATE REQUEST", "csr", name)
    }


def _provider(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    digest = mocks.digest("provider", name)
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}", {}


fabricates("pulumi:providers:aws", "pulumi:providers:gcp", "pulumi:providers:kubernetes")(_provider)
