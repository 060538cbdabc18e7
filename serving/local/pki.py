"""Locally generated certificates for the private site's gRPC mutual TLS.

The same shape as the cloud's ServingPki: one CA, a server certificate for the site and
one client certificate; private keys are written owner-only.
"""

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from serving.endpoints import TlsFiles

VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class LocalPki:
    server: TlsFiles
    client: TlsFiles


def pki_files(folder: Path) -> LocalPki:
    """Where `create_pki` writes the files: both ends trust the same CA."""
    ca = str(folder / "ca.crt")

    def files(role: str) -> TlsFiles:
        return TlsFiles(ca=ca, cert=str(folder / f"{role}.crt"), key=str(folder / f"{role}.key"))

    return LocalPki(server=files("server"), client=files("client"))


def create_pki(
    folder: Path, server_name: str = "triton-private", addresses: Sequence[str] = ("127.0.0.1",)
) -> LocalPki:
    """A fresh CA, a server cert for localhost and `addresses`, and a client cert, under
    `folder`."""
    paths = pki_files(folder)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("hybrid-inference local CA")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    Path(paths.server.ca).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def leaf(files: TlsFiles, common_name: str, usage: x509.ObjectIdentifier) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = _builder(_name(common_name), ca_name, key.public_key())
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        ).add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.DNSName(server_name),
                        *(x509.IPAddress(ipaddress.ip_address(a)) for a in addresses),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        Path(files.cert).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path = Path(files.key)
        key_path.unlink(missing_ok=True)
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    leaf(paths.server, server_name, ExtendedKeyUsageOID.SERVER_AUTH)
    leaf(paths.client, "hybrid-client", ExtendedKeyUsageOID.CLIENT_AUTH)
    return paths


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hybrid-inference"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )
