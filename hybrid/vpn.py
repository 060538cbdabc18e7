"""The site-to-site VPN's IKE settings and pre-shared key rules, spelled once.

Both clouds' tunnels and the local mode's strongSwan tunnel are generated from
`VPN_SETTINGS`: one IKE version and one phase 1 / phase 2 algorithm set. Offering
several sets lets each end pick differently at rekey, a known cause of dropped tunnels
between AWS and GCP, so every end offers exactly this one. Each algorithm is named here
once, with the spelling of each consumer (AWS, GCP, strongSwan).
"""

import secrets
import string
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class AlgorithmSet:
    """One phase's algorithms (names are keys of the tables below)."""

    encryption: str
    integrity: str
    dh_group: int
    """Phase 1: the key exchange; phase 2: perfect forward secrecy."""


@dataclass(frozen=True)
class IkeSettings:
    version: int
    phase1: AlgorithmSet
    phase2: AlgorithmSet


VPN_SETTINGS = IkeSettings(
    version=2,
    phase1=AlgorithmSet(encryption="aes256", integrity="sha256", dh_group=14),
    phase2=AlgorithmSet(encryption="aes256", integrity="sha256", dh_group=14),
)


@dataclass(frozen=True)
class Spelling:
    """How AWS, GCP and strongSwan write one algorithm (None: AWS has no such input)."""

    aws: str | int | None
    gcp: str
    strongswan: str


ENCRYPTION = {
    "aes128": Spelling(aws="AES128", gcp="AES-CBC-128", strongswan="aes128"),
    "aes256": Spelling(aws="AES256", gcp="AES-CBC-256", strongswan="aes256"),
}
INTEGRITY = {
    "sha256": Spelling(aws="SHA2-256", gcp="HMAC-SHA2-256-128", strongswan="sha256"),
    "sha384": Spelling(aws="SHA2-384", gcp="HMAC-SHA2-384-192", strongswan="sha384"),
    "sha512": Spelling(aws="SHA2-512", gcp="HMAC-SHA2-512-256", strongswan="sha512"),
}
PRF = {
    "sha256": Spelling(aws=None, gcp="PRF-HMAC-SHA2-256", strongswan="prfsha256"),
    "sha384": Spelling(aws=None, gcp="PRF-HMAC-SHA2-384", strongswan="prfsha384"),
    "sha512": Spelling(aws=None, gcp="PRF-HMAC-SHA2-512", strongswan="prfsha512"),
}
"""Phase 1's pseudo-random function follows its integrity algorithm (AWS derives it)."""
DH_GROUPS = {
    14: Spelling(aws=14, gcp="Group-14", strongswan="modp2048"),
    15: Spelling(aws=15, gcp="Group-15", strongswan="modp3072"),
    16: Spelling(aws=16, gcp="Group-16", strongswan="modp4096"),
}

# Both clouds accept pre-shared keys of 8-64 letters, digits, '.' and '_' (AWS: not
# starting with '0').
PSK_LENGTH = 48
PSK_SPECIALS = "._"
PSK_ALPHABET = string.ascii_letters + string.digits + PSK_SPECIALS
REQUIRED_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
"""What `random.RandomPassword(min_lower=1, min_upper=1, min_numeric=1)` guarantees."""


def aws_ike_options(settings: IkeSettings = VPN_SETTINGS) -> dict[str, Any]:
    """The `tunnelN_*` IKE inputs of an AWS VPN connection (without the tunnel prefix)."""
    options: dict[str, Any] = {"ike_versions": [f"ikev{settings.version}"]}
    for number, phase in ((1, settings.phase1), (2, settings.phase2)):
        options[f"phase{number}_encryption_algorithms"] = [ENCRYPTION[phase.encryption].aws]
        options[f"phase{number}_integrity_algorithms"] = [INTEGRITY[phase.integrity].aws]
        options[f"phase{number}_dh_group_numbers"] = [DH_GROUPS[phase.dh_group].aws]
    return options


def gcp_cipher_suite(settings: IkeSettings = VPN_SETTINGS) -> dict[str, Any]:
    """A GCP VPN tunnel's `cipher_suite` input."""
    one, two = settings.phase1, settings.phase2
    return {
        "phase1": {
            "encryptions": [ENCRYPTION[one.encryption].gcp],
            "integrities": [INTEGRITY[one.integrity].gcp],
            "prves": [PRF[one.integrity].gcp],
            "dhs": [DH_GROUPS[one.dh_group].gcp],
        },
        "phase2": {
            "encryptions": [ENCRYPTION[two.encryption].gcp],
            "integrities": [INTEGRITY[two.integrity].gcp],
            "pfs": [DH_GROUPS[two.dh_group].gcp],
        },
    }


def strongswan_proposals(settings: IkeSettings = VPN_SETTINGS) -> tuple[str, str]:
    """swanctl's `proposals` (IKE) and `esp_proposals` (child): exactly one each."""
    one, two = settings.phase1, settings.phase2
    ike = [ENCRYPTION[one.encryption], INTEGRITY[one.integrity], PRF[one.integrity]]
    esp = [ENCRYPTION[two.encryption], INTEGRITY[two.integrity]]
    return (
        "-".join([*(s.strongswan for s in ike), DH_GROUPS[one.dh_group].strongswan]),
        "-".join([*(s.strongswan for s in esp), DH_GROUPS[two.dh_group].strongswan]),
    )


def disagreements(first: IkeSettings, second: IkeSettings) -> list[str]:
    """Each setting on which two tunnel ends differ, in words ("phase 1 encryption: ...")."""
    found = []
    if first.version != second.version:
        found.append(f"IKE version: {first.version} vs {second.version}")
    for number in (1, 2):
        a, b = getattr(first, f"phase{number}"), getattr(second, f"phase{number}")
        for field in fields(AlgorithmSet):
            mine, theirs = getattr(a, field.name), getattr(b, field.name)
            if mine != theirs:
                label = "PFS group" if number == 2 and field.name == "dh_group" else field.name
                found.append(f"phase {number} {label.replace('_', ' ')}: {mine} vs {theirs}")
    return found


def generate_psk() -> str:
    """A pre-shared key under the stack's rules: `PSK_LENGTH` characters of `PSK_ALPHABET`,
    at least one lowercase letter, uppercase letter and digit, never starting with '0'."""
    while True:
        key = "".join(secrets.choice(PSK_ALPHABET) for _ in range(PSK_LENGTH))
        if all(any(c in group for c in key) for group in REQUIRED_CLASSES):
            return aws_safe_psk(key)


def aws_safe_psk(key: str) -> str:
    """AWS refuses a pre-shared key that starts with '0': move leading zeros to the end."""
    stripped = key.lstrip("0")
    return stripped + "0" * (len(key) - len(stripped))
