"""strongSwan's configuration comes from hybrid.vpn, and its raw SA listing is read right;
a machine without what the VPN mode needs is told what that is."""

import dataclasses
from pathlib import Path

import pytest

from hybrid.vpn import VPN_SETTINGS, AlgorithmSet, strongswan_proposals
from serving.errors import LocalStackError
from serving.local import ipsec, netns
from serving.local.addressing import VpnPlan

KEYS = {"tunnel-0": "Key0.aaaaaaaaaaaaaaaaaaaaaaaa", "tunnel-1": "Key1_bbbbbbbbbbbbbbbbbbbbbbbb"}
RAW = (
    "list-sa event {tunnel-1 {uniqueid=2 version=2 state=ESTABLISHED local-host=198.18.2.5 "
    "remote-host=198.18.2.6 child-sas {tunnel-1-2 {name=tunnel-1 reqid=1 state=INSTALLED "
    "bytes-in=546 packets-in=10 bytes-out=598 packets-out=11 local-ts=[198.18.0.0/24] "
    "remote-ts=[198.19.0.0/24]}}}}"
)


@pytest.mark.parametrize("site", ["public", "private"])
def test_both_ends_offer_exactly_the_one_algorithm_set(site: str, tmp_path: Path) -> None:
    plan = VpnPlan(0)
    ipsec.write_config(tmp_path, plan, site, VPN_SETTINGS, KEYS)
    conf = (ipsec.site_folder(tmp_path, site) / "swanctl.conf").read_text()
    ike, esp = strongswan_proposals(VPN_SETTINGS)
    assert conf.count(f"proposals = {ike}\n") == 2, "one IKE proposal per tunnel"
    assert conf.count(f"esp_proposals = {esp}\n") == 2
    assert conf.count("version = 2\n") == 2
    assert conf.count("mobike = no") == 2, "each tunnel stays on its own underlay path"
    for key in KEYS.values():
        assert f'secret = "{key}"' in conf
    mode = (ipsec.site_folder(tmp_path, site) / "swanctl.conf").stat().st_mode & 0o777
    assert mode == 0o600, "swanctl.conf holds the pre-shared keys"
    restart = "dpd_action = restart" in conf
    assert restart == (site == "public"), "the public site re-initiates tunnels DPD closed"


def test_a_changed_set_changes_only_that_sites_proposals(tmp_path: Path) -> None:
    other = dataclasses.replace(VPN_SETTINGS, phase1=AlgorithmSet("aes128", "sha384", 15))
    conf = ipsec.swanctl_conf(VpnPlan(0), "private", other, KEYS)
    assert "proposals = aes128-sha384-prfsha384-modp3072\n" in conf


def test_raw_sa_listing_gives_state_and_esp_counters() -> None:
    parsed = ipsec.parse_raw(RAW.removeprefix("list-sa event "))
    state = ipsec._tunnel_state("tunnel-1", parsed["tunnel-1"])
    assert state.up and (state.local, state.remote) == ("198.18.2.5", "198.18.2.6")
    assert (state.packets_in, state.packets_out, state.bytes_out) == (10, 11, 598)
    child = parsed["tunnel-1"]["child-sas"]["tunnel-1-2"]
    assert child["local-ts"] == ["198.18.0.0/24"]


def test_without_root_the_vpn_mode_says_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(netns.shutil, "which", lambda name: None)
    reason = netns.unavailable()
    assert reason is not None
    assert "needs root" in reason and "uid 1000" in reason
    assert "make setup-vpn" in reason and "strongswan-swanctl" in reason
    assert "loopback mode needs none" in reason


def test_a_state_folder_too_deep_for_charons_socket_is_refused_up_front(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100)
    with pytest.raises(LocalStackError, match="too long for a Unix socket"):
        ipsec.write_config(deep, VpnPlan(0), "public", VPN_SETTINGS, KEYS)
