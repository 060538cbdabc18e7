"""``pulumi preview`` before anything exists: every computed value is unknown, and the
program must still register the same resources without tripping over them."""

from collections import Counter

from infra.offline import UNKNOWN, StackEvaluation


def test_preview_registers_the_same_graph_as_an_update(evaluate) -> None:  # type: ignore[no-untyped-def]
    preview: StackEvaluation = evaluate("prod", preview=True)
    update: StackEvaluation = evaluate("prod")
    assert Counter(r.urn for r in preview.resources) == Counter(r.urn for r in update.resources)
    assert preview.preview and not update.preview


def test_computed_values_are_unknown_in_preview(evaluate) -> None:  # type: ignore[no-untyped-def]
    preview: StackEvaluation = evaluate("prod", preview=True)
    assert all(r.id == "" for r in preview.resources)
    peers = preview.of_type("gcp:compute/routerPeer:RouterPeer")
    assert peers and all(p.inputs["peerIpAddress"] is UNKNOWN for p in peers)
    tunnels = preview.of_type("gcp:compute/vPNTunnel:VPNTunnel")
    assert all(t.inputs["vpnGateway"] is UNKNOWN for t in tunnels)
    # What the program passes in from config stays known.
    cluster = preview.of_type("gcp:container/cluster:Cluster")[0]
    assert cluster.inputs["privateClusterConfig"]["masterIpv4CidrBlock"] == "172.16.32.0/28"
    assert preview.outputs["publicClusterName"] is UNKNOWN
    assert preview.outputs["vpnTunnels"] == [UNKNOWN] * 4


def test_secrets_stay_secret_while_unknown(evaluate) -> None:  # type: ignore[no-untyped-def]
    preview: StackEvaluation = evaluate("prod", preview=True)
    assert {"publicKubeconfig", "privateKubeconfig"} <= preview.secret_outputs
    assert preview.outputs["privateKubeconfig"] is UNKNOWN
