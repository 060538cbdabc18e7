"""ServingPki alone, under the mocks: a CA, a server certificate per site and one client
certificate, with ECDSA keys that only ever travel as secrets."""

import pulumi
import pytest

from components.serving_pki import ServingPki, ServingPkiArgs
from hybrid.sites import SITES
from infra.offline import StackEvaluation, evaluate_component


def _create() -> None:
    pki = ServingPki("serving-pki", ServingPkiArgs())
    pulumi.export("caCertPem", pki.ca_cert_pem)
    pulumi.export("clientKeyPem", pki.client_key_pem)


@pytest.fixture(scope="module")
def pki() -> StackEvaluation:
    return evaluate_component(_create)


def test_one_ca_signs_a_server_certificate_per_site_and_a_client(pki: StackEvaluation) -> None:
    (ca,) = pki.of_type("tls:index/selfSignedCert:SelfSignedCert")
    assert ca.inputs["isCaCertificate"] is True
    assert pki.outputs["caCertPem"] == ca.outputs["certPem"]
    signed = pki.of_type("tls:index/locallySignedCert:LocallySignedCert")
    assert len(signed) == len(SITES) + 1
    assert {c.inputs["caCertPem"] for c in signed} == {ca.outputs["certPem"]}
    assert len([c for c in signed if "client" in c.name]) == 1


def test_private_keys_are_ecdsa_and_travel_only_as_secrets(pki: StackEvaluation) -> None:
    for key in pki.of_type("tls:index/privateKey:PrivateKey"):
        assert key.inputs["algorithm"] == "ECDSA", key.name
    for request in pki.of_type("tls:index/certRequest:CertRequest"):
        assert "privateKeyPem" in request.secret_inputs, request.name
    for cert in pki.of_type("tls:index/locallySignedCert:LocallySignedCert"):
        assert "caPrivateKeyPem" in cert.secret_inputs, cert.name
    assert "PRIVATE KEY" in pki.outputs["clientKeyPem"]
