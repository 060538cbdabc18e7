"""The local mTLS material: a CA that signs a server cert for 127.0.0.1 and a client cert."""

import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from serving.local.pki import create_pki


def load(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def test_both_leaves_chain_to_the_ca_with_the_right_usage(tmp_path: Path) -> None:
    pki = create_pki(tmp_path / "pki")
    assert pki.server.ca == pki.client.ca
    ca = load(pki.server.ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for files, usage in (
        (pki.server, ExtendedKeyUsageOID.SERVER_AUTH),
        (pki.client, ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        cert = load(files.cert)
        cert.verify_directly_issued_by(ca)
        assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [usage]
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert stat.S_IMODE(Path(files.key).stat().st_mode) == 0o600, "keys are owner-only"
    names = load(pki.server.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "127.0.0.1" in {str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)}
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)


def test_a_new_pki_replaces_the_old_one(tmp_path: Path) -> None:
    first = load(create_pki(tmp_path).client.cert)
    second = create_pki(tmp_path)
    assert load(second.client.cert).serial_number != first.serial_number
    assert stat.S_IMODE(Path(second.client.key).stat().st_mode) == 0o600
