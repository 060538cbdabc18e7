"""state.json: the shape the issue specifies, atomic writes, a clear error when unreadable."""

import json
from pathlib import Path

import pytest

from serving.endpoints import Endpoint, TlsFiles, endpoints_from_state
from serving.errors import LocalStackError
from serving.local import stack
from serving.local.iam import Principal
from serving.local.processes import Process
from serving.local.state import LocalState, SiteState, read_state, remove_state, write_state


def sample_state(tmp_path: Path) -> LocalState:
    tls = TlsFiles(ca="ca.crt", cert="client.crt", key="client.key")
    return LocalState(
        stack="dev",
        processes={
            "moto": Process("moto", 101, 5, str(tmp_path / "moto.log")),
            "triton-private": Process("triton-private", 102, 6, str(tmp_path / "t.log")),
        },
        sites={
            "public": SiteState(
                Endpoint(
                    "public",
                    "127.0.0.1:1",
                    "127.0.0.1:2",
                    None,
                    ("text_embedding",),
                    metrics="127.0.0.1:3",
                ),
                repository="s3://http://127.0.0.1:4/b/repo/abc",
                content_hash="abc",
            ),
            "private": SiteState(
                Endpoint(
                    "private", "127.0.0.1:5", None, tls, ("ctr_ranker",), metrics="127.0.0.1:6"
                ),
                repository="gs://b/repo/def",
                content_hash="def",
            ),
        },
        emulators={"s3": "http://127.0.0.1:4"},
        principals={"triton-public": Principal("arn:aws:iam::1:user/triton-public", "AK", "s")},
    )


def test_state_json_has_pids_logs_and_per_site_endpoints(tmp_path: Path) -> None:
    write_state(sample_state(tmp_path), tmp_path)
    raw = json.loads((tmp_path / "state.json").read_text())
    assert raw["pids"] == {"moto": 101, "triton-private": 102}
    assert raw["logs"]["moto"].endswith("moto.log")
    public, private = raw["sites"]["public"], raw["sites"]["private"]
    assert (public["grpc"], public["http"], public["tls"]) == ("127.0.0.1:1", "127.0.0.1:2", None)
    assert private["tls"] == {"ca": "ca.crt", "cert": "client.crt", "key": "client.key"}
    assert private["http"] is None, "the mTLS site has no plaintext HTTP"
    assert raw["principals"]["triton-public"]["access_key_id"] == "AK", "what a restart needs"
    assert not list(tmp_path.glob("*.tmp")), "written atomically"


def test_state_round_trips_and_feeds_the_client(tmp_path: Path) -> None:
    state = sample_state(tmp_path)
    write_state(state, tmp_path)
    assert read_state(tmp_path) == state
    endpoints = {e.site: e for e in endpoints_from_state(tmp_path / "state.json")}
    assert endpoints["private"].tls == state.sites["private"].endpoint.tls
    assert endpoints["public"].models == ("text_embedding",)
    remove_state(tmp_path)
    remove_state(tmp_path)
    assert read_state(tmp_path) is None


def test_an_unreadable_state_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(LocalStackError, match=r"unreadable .* delete it"):
        read_state(tmp_path)


def test_one_up_or_down_at_a_time_per_folder(tmp_path: Path) -> None:
    busy = pytest.raises(LocalStackError, match="another `up` or `down` is running")
    with stack._exclusive(tmp_path), busy:
        stack.down(tmp_path)
    assert stack.down(tmp_path) == [], "free again, and nothing to stop"
