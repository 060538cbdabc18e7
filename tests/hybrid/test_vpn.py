"""The VPN's one algorithm set: every consumer's spelling comes from it, and the local
mode's keys follow the stack's rules."""

import dataclasses
import string

import pytest

from hybrid.vpn import (
    PSK_LENGTH,
    PSK_SPECIALS,
    VPN_SETTINGS,
    AlgorithmSet,
    aws_ike_options,
    disagreements,
    gcp_cipher_suite,
    generate_psk,
    strongswan_proposals,
)


def test_the_stack_tunnels_take_their_ike_settings_from_the_one_definition(evaluate) -> None:
    stack = evaluate("dev")
    aws = aws_ike_options()
    for connection in stack.of_type("aws:ec2/vpnConnection:VpnConnection"):
        for tunnel in ("tunnel1", "tunnel2"):
            for key, value in aws.items():
                camel = tunnel + "".join(part.title() for part in key.split("_"))
                assert connection.inputs[camel] == value, f"{connection.name}: {camel}"
    tunnels = stack.of_type("gcp:compute/vPNTunnel:VPNTunnel")
    assert len(tunnels) == 4
    for tunnel in tunnels:
        assert tunnel.inputs["cipherSuite"] == gcp_cipher_suite(), f"{tunnel.name}: cipherSuite"
        assert tunnel.inputs["ikeVersion"] == VPN_SETTINGS.version, f"{tunnel.name}: ikeVersion"


def test_each_cloud_spells_the_one_set_as_its_api_expects() -> None:
    assert aws_ike_options() == {
        "ike_versions": ["ikev2"],
        "phase1_encryption_algorithms": ["AES256"],
        "phase1_integrity_algorithms": ["SHA2-256"],
        "phase1_dh_group_numbers": [14],
        "phase2_encryption_algorithms": ["AES256"],
        "phase2_integrity_algorithms": ["SHA2-256"],
        "phase2_dh_group_numbers": [14],
    }
    assert gcp_cipher_suite()["phase1"]["prves"] == ["PRF-HMAC-SHA2-256"]
    assert strongswan_proposals() == (
        "aes256-sha256-prfsha256-modp2048",
        "aes256-sha256-modp2048",
    )


def test_disagreements_name_each_setting_that_differs() -> None:
    weaker = dataclasses.replace(
        VPN_SETTINGS,
        phase2=AlgorithmSet(encryption="aes128", integrity="sha256", dh_group=15),
    )
    assert disagreements(VPN_SETTINGS, weaker) == [
        "phase 2 encryption: aes256 vs aes128",
        "phase 2 PFS group: 14 vs 15",
    ]
    assert disagreements(VPN_SETTINGS, VPN_SETTINGS) == []


@pytest.mark.parametrize("attempt", range(20))
def test_local_keys_follow_the_stack_rules(attempt: int) -> None:
    key = generate_psk()
    assert len(key) == PSK_LENGTH
    assert set(key) <= set(string.ascii_letters + string.digits + PSK_SPECIALS)
    assert not key.startswith("0"), "AWS refuses keys starting with 0"
    for group in (string.ascii_lowercase, string.ascii_uppercase, string.digits):
        assert set(key) & set(group), f"{key} lacks one of {group}"
