"""VPN (IKEv2, keys out of plain config) and open-ingress rules."""

from infra.offline import MockedResource
from policy.network import NO_OPEN_INGRESS, VPN_IKEV2, VPN_PSK_NOT_PLAIN, digest
from policy.pack_config import plain_digests
from tests.policy.builders import REMOVE, changed, messages, resource

AWS_VPN = {
    "customerGatewayId": "cgw-1",
    "transitGatewayId": "tgw-1",
    "type": "ipsec.1",
    "tunnel1IkeVersions": ["ikev2"],
    "tunnel2IkeVersions": ["ikev2"],
    "tunnel1PresharedKey": "generated.key_one_48chars",
    "tunnel2PresharedKey": "generated.key_two_48chars",
}
GCP_TUNNEL = {"ikeVersion": 2, "sharedSecret": "generated.key_one_48chars", "router": "r"}
AWS_SECRETS = frozenset({"tunnel1PresharedKey", "tunnel2PresharedKey"})
PLAIN_CONFIG = {"aws:region": "us-east-1", "hybrid:adminCidrs": ["203.0.113.0/24"]}


def vpn(aws: dict = AWS_VPN, gcp: dict = GCP_TUNNEL) -> list[MockedResource]:
    return [
        resource("aws:ec2/vpnConnection:VpnConnection", "vpn-0", aws, secret_inputs=AWS_SECRETS),
        resource(
            "gcp:compute/vPNTunnel:VPNTunnel",
            "tunnel-0",
            gcp,
            secret_inputs=frozenset({"sharedSecret"}),
        ),
    ]


def test_ikev2_tunnels_pass() -> None:
    assert messages(VPN_IKEV2, *vpn()) == []
    # GCP's default IKE version is 2.
    assert messages(VPN_IKEV2, *vpn(gcp=changed(GCP_TUNNEL, "ikeVersion", REMOVE))) == []


def test_ikev1_or_unpinned_tunnels_fail() -> None:
    aws = changed(AWS_VPN, "tunnel1IkeVersions", ["ikev1", "ikev2"])
    aws = changed(aws, "tunnel2IkeVersions", REMOVE)
    assert messages(VPN_IKEV2, *vpn(aws, changed(GCP_TUNNEL, "ikeVersion", 1))) == [
        "VPN connection 'vpn-0': tunnel1IkeVersions is ['ikev1', 'ikev2']; must be ['ikev2']",
        "VPN connection 'vpn-0': tunnel2IkeVersions is unset (AWS then accepts ikev1 too); "
        "must be ['ikev2']",
        "VPN tunnel 'tunnel-0': ikeVersion is 1; must be 2",
    ]


def test_generated_keys_pass() -> None:
    config = {"plainConfigDigests": sorted(plain_digests(PLAIN_CONFIG))}
    assert messages(VPN_PSK_NOT_PLAIN, *vpn(), config=config) == []
    # AWS generates (and keeps secret) a key that is not given.
    no_aws_keys = changed(AWS_VPN, "tunnel1PresharedKey", REMOVE)
    assert messages(VPN_PSK_NOT_PLAIN, *vpn(aws=no_aws_keys), config=config) == []


def test_keys_from_plain_config_fail() -> None:
    leaked = {**PLAIN_CONFIG, "hybrid:vpnKey": "typed-in-psk-1234"}
    config = {"plainConfigDigests": sorted(plain_digests(leaked))}
    aws = changed(AWS_VPN, "tunnel2PresharedKey", "typed-in-psk-1234")
    gcp = changed(GCP_TUNNEL, "sharedSecret", "typed-in-psk-1234")
    assert messages(VPN_PSK_NOT_PLAIN, *vpn(aws, gcp), config=config) == [
        "VPN 'vpn-0': tunnel2PresharedKey is a plain stack config value; generate it "
        "(random.RandomPassword) or store it with `pulumi config set --secret`",
        "VPN 'tunnel-0': sharedSecret is a plain stack config value; generate it "
        "(random.RandomPassword) or store it with `pulumi config set --secret`",
    ]


def test_secret_config_is_not_plain_config() -> None:
    stack_file = {**PLAIN_CONFIG, "hybrid:vpnKey": {"secure": "v1:AAAABBBB"}}
    assert plain_digests(stack_file) == plain_digests(PLAIN_CONFIG)
    assert digest("us-east-1") in plain_digests(stack_file)


def test_missing_keys_or_settings_fail_closed() -> None:
    config: dict[str, list[str]] = {"plainConfigDigests": []}
    no_secret = changed(GCP_TUNNEL, "sharedSecret", REMOVE)
    assert messages(VPN_PSK_NOT_PLAIN, *vpn(gcp=no_secret), config=config) == [
        "VPN tunnel 'tunnel-0': sharedSecret is not set"
    ]
    unconfigured = messages(
        VPN_PSK_NOT_PLAIN, *vpn(aws=changed(AWS_VPN, "tunnel2PresharedKey", REMOVE))
    )
    assert unconfigured == [
        "VPN 'vpn-0': cannot tell whether tunnel1PresharedKey comes from plain config, the pack "
        "was not given 'plainConfigDigests' (run it through `pulumi preview --policy-pack "
        "policy`)",
        "VPN 'tunnel-0': cannot tell whether sharedSecret comes from plain config, the pack was "
        "not given 'plainConfigDigests' (run it through `pulumi preview --policy-pack policy`)",
    ]


# --- Ingress -------------------------------------------------------------------------------

LB_TAGS = {"hybrid.dev/role": "public-load-balancer", "Name": "public-lb"}


def sg(name: str, ingress: list, tags: dict | None = None) -> MockedResource:
    props = {"vpcId": "vpc-1", "ingress": ingress, "tags": tags or {"Name": name}}
    return resource("aws:ec2/securityGroup:SecurityGroup", name, props)


def rule(protocol: str, port: int, cidr: str) -> dict:
    return {"protocol": protocol, "fromPort": port, "toPort": port, "cidrBlocks": [cidr]}


def test_closed_or_exempt_ingress_passes() -> None:
    firewall = {
        "network": "vpc",
        "direction": "INGRESS",
        "sourceRanges": ["10.10.0.0/16"],
        "allows": [{"protocol": "tcp", "ports": ["8001"]}],
    }
    egress = {
        "network": "vpc",
        "direction": "EGRESS",
        "destinationRanges": ["0.0.0.0/0"],
        "allows": [{"protocol": "all"}],
    }
    assert (
        messages(
            NO_OPEN_INGRESS,
            sg("admin", [rule("tcp", 443, "203.0.113.0/24")]),
            sg("public-lb", [rule("tcp", 443, "0.0.0.0/0")], LB_TAGS),
            resource(
                "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                "lb-https",
                {
                    "securityGroupId": "sg-1",
                    "ipProtocol": "tcp",
                    "fromPort": 443,
                    "toPort": 443,
                    "cidrIpv4": "0.0.0.0/0",
                    "tags": LB_TAGS,
                },
            ),
            resource("gcp:compute/firewall:Firewall", "from-aws", firewall),
            resource("gcp:compute/firewall:Firewall", "egress", egress),
        )
        == []
    )


def test_open_ingress_fails() -> None:
    tail = (
        "; only tcp 443 on the public load balancer (tagged "
        "hybrid.dev/role=public-load-balancer) may be open"
    )
    assert messages(
        NO_OPEN_INGRESS,
        sg("lb-http", [rule("tcp", 80, "0.0.0.0/0")], LB_TAGS),
        sg("untagged", [rule("tcp", 443, "0.0.0.0/0"), rule("-1", 0, "::/0")]),
        resource(
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            "ssh",
            {"type": "ingress", "securityGroupId": "sg-1", **rule("tcp", 22, "0.0.0.0/0")},
        ),
        resource(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "range",
            {
                "securityGroupId": "sg-1",
                "ipProtocol": "tcp",
                "fromPort": 8000,
                "toPort": 8002,
                "cidrIpv4": "0.0.0.0/0",
                "tags": LB_TAGS,
            },
        ),
        resource(
            "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
            "default",
            {"vpcId": "vpc-1", "ingress": [rule("tcp", 443, "0.0.0.0/0")]},
        ),
        resource(
            "gcp:compute/firewall:Firewall",
            "world",
            {
                "network": "vpc",
                "sourceRanges": ["0.0.0.0/0"],
                "allows": [{"protocol": "tcp", "ports": ["22", "443"]}],
            },
        ),
        resource(
            "gcp:compute/firewall:Firewall",
            "unscoped",
            {"network": "vpc", "allows": [{"protocol": "icmp"}]},
        ),
    ) == [
        f"Security group 'lb-http': ingress from 0.0.0.0/0 on tcp 80{tail}",
        f"Security group 'untagged': ingress from 0.0.0.0/0 on tcp 443{tail}",
        f"Security group 'untagged': ingress from 0.0.0.0/0 on all traffic{tail}",
        f"Security group rule 'ssh': ingress from 0.0.0.0/0 on tcp 22{tail}",
        f"Security group ingress rule 'range': ingress from 0.0.0.0/0 on tcp 8000-8002{tail}",
        f"Security group 'default': ingress from 0.0.0.0/0 on tcp 443{tail}",
        "Firewall 'world': allows tcp 22,443 from 0.0.0.0/0; the private site takes traffic "
        "only from the VPN, the admin networks and Google's health checks",
        "Firewall 'unscoped': allows icmp all from 0.0.0.0/0; the private site takes traffic "
        "only from the VPN, the admin networks and Google's health checks",
    ]


def lb_service(ports: list[int], sources: list[str] | None) -> MockedResource:
    spec: dict = {"type": "LoadBalancer", "ports": [{"port": p, "targetPort": 8001} for p in ports]}
    if sources is not None:
        spec["loadBalancerSourceRanges"] = sources
    return resource("kubernetes:core/v1:Service", "triton-public", {"spec": spec})


def test_load_balancer_services_open_to_everyone_only_on_443() -> None:
    assert messages(NO_OPEN_INGRESS, lb_service([443], ["0.0.0.0/0"])) == []
    assert messages(NO_OPEN_INGRESS, lb_service([443, 8001], ["203.0.113.0/24"])) == []
    assert messages(NO_OPEN_INGRESS, lb_service([443, 8001], None)) == [
        "LoadBalancer Service 'triton-public' admits 0.0.0.0/0 (loadBalancerSourceRanges) on "
        "port 8001; only 443 may be open to everyone, or list the client networks"
    ]
