"""Network edges: IKEv2 tunnels with keys kept out of plain config, no ingress from anywhere.

A policy cannot see whether a value was a secret (the engine unwraps secrets before the
pack sees them), so "not in plain config" is checked by value: the pack is handed the
SHA-256 digests of the stack's plain (non-secret) config values (see
``policy.pack_config``) and no tunnel key may match one. Keys generated in the program,
as ``HybridVpn`` does, never do.

The one opening allowed is HTTPS (tcp 443) on the public site's load balancer, which is
marked by the tag ``hybrid.dev/role: public-load-balancer`` on its security group (or on a
``vpc.SecurityGroupIngressRule``). Plain ``ec2.SecurityGroupRule`` has no tags, so it can
never carry the exemption. A Kubernetes ``LoadBalancer`` Service counts too: the cloud
builds its security group from ``loadBalancerSourceRanges`` (none means everyone).
"""

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyConfigSchema, PolicyResource, Severity

from policy.props import as_number, get, is_anywhere, items
from policy.rules import ResourcePolicy, ResourceRule, StackPolicy, StackRule, of_type

AWS_VPN_CONNECTION = "aws:ec2/vpnConnection:VpnConnection"
GCP_VPN_TUNNEL = "gcp:compute/vPNTunnel:VPNTunnel"
AWS_SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
AWS_DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
AWS_SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
AWS_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
GCP_FIREWALL = "gcp:compute/firewall:Firewall"
K8S_SERVICE = "kubernetes:core/v1:Service"

AWS_TUNNELS = ("tunnel1", "tunnel2")
PUBLIC_LB_TAG = ("hybrid.dev/role", "public-load-balancer")
HTTPS_PORT = 443
TCP = ("tcp", "6")
DIGESTS_KEY = "plainConfigDigests"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- VPN -----------------------------------------------------------------------------------


def _aws_ikev2(props: Mapping[str, Any], name: str) -> Iterator[str]:
    for tunnel in AWS_TUNNELS:
        versions = [str(v) for v in items(get(props, f"{tunnel}IkeVersions"))]
        if versions != ["ikev2"]:
            shown = versions or "unset (AWS then accepts ikev1 too)"
            yield f"VPN connection '{name}': {tunnel}IkeVersions is {shown}; must be ['ikev2']"


def _gcp_ikev2(props: Mapping[str, Any], name: str) -> Iterator[str]:
    version = as_number(get(props, "ikeVersion", default=2))
    if version != 2:
        yield f"VPN tunnel '{name}': ikeVersion is {version:g}; must be 2"


VPN_IKEV2 = ResourcePolicy(
    "vpn-ikev2-only",
    "Site-to-site VPN tunnels negotiate IKEv2 only (IKEv1 is weaker and rekeys badly "
    "between AWS and GCP).",
    Severity.HIGH,
    [
        ResourceRule("aws", "both tunnels IKEv2 only", {AWS_VPN_CONNECTION: _aws_ikev2}),
        ResourceRule("gcp", "tunnel IKE version 2", {GCP_VPN_TUNNEL: _gcp_ikev2}),
    ],
)


def _psk_rule(cloud: str, kind: str, keys: tuple[str, ...], required: bool) -> StackRule:
    def check(
        resources: Sequence[PolicyResource], config: Mapping[str, Any]
    ) -> Iterator[tuple[str, str | None]]:
        plain = config.get(DIGESTS_KEY)
        for resource in of_type(resources, kind):
            for key in keys:
                value = get(resource.props, key)
                if not value:
                    if required:
                        yield f"VPN tunnel '{resource.name}': {key} is not set", resource.urn
                elif plain is None:
                    yield (
                        f"VPN '{resource.name}': cannot tell whether {key} comes from plain "
                        f"config, the pack was not given '{DIGESTS_KEY}' (run it through "
                        "`pulumi preview --policy-pack policy`)",
                        resource.urn,
                    )
                elif digest(str(value)) in plain:
                    yield (
                        f"VPN '{resource.name}': {key} is a plain stack config value; generate "
                        "it (random.RandomPassword) or store it with `pulumi config set --secret`",
                        resource.urn,
                    )

    return StackRule(cloud, f"{kind.rsplit(':', 1)[-1]} keys set and not in plain config", check)


VPN_PSK_NOT_PLAIN = StackPolicy(
    "vpn-psk-not-plain",
    "VPN pre-shared keys never come from plain (non-secret) stack config.",
    Severity.CRITICAL,
    [
        _psk_rule(
            "aws",
            AWS_VPN_CONNECTION,
            tuple(f"{t}PresharedKey" for t in AWS_TUNNELS),
            required=False,  # AWS generates a key it keeps secret when none is given
        ),
        _psk_rule("gcp", GCP_VPN_TUNNEL, ("sharedSecret",), required=True),
    ],
    config_schema=PolicyConfigSchema({DIGESTS_KEY: {"type": "array", "items": {"type": "string"}}}),
)


# --- Ingress -------------------------------------------------------------------------------


def _is_public_lb(tags: Any) -> bool:
    key, value = PUBLIC_LB_TAG
    return get(tags, key) == value


def _https_only(protocol: Any, from_port: Any, to_port: Any) -> bool:
    return (
        str(protocol).lower() in TCP
        and as_number(from_port, -1) == HTTPS_PORT
        and as_number(to_port, -1) == HTTPS_PORT
    )


def _describe(protocol: Any, from_port: Any, to_port: Any) -> str:
    if str(protocol) == "-1":
        return "all traffic"
    low, high = as_number(from_port, -1), as_number(to_port, -1)
    ports = f"{low:g}" if low == high else f"{low:g}-{high:g}"
    return f"{protocol} {ports}"


def _open_ingress_message(kind: str, name: str, traffic: str) -> str:
    return (
        f"{kind} '{name}': ingress from 0.0.0.0/0 on {traffic}; only tcp 443 on the public "
        f"load balancer (tagged {PUBLIC_LB_TAG[0]}={PUBLIC_LB_TAG[1]}) may be open"
    )


def _security_group(props: Mapping[str, Any], name: str) -> Iterator[str]:
    exempt_group = _is_public_lb(get(props, "tags"))
    for rule in items(get(props, "ingress")):
        cidrs = items(get(rule, "cidrBlocks")) + items(get(rule, "ipv6CidrBlocks"))
        ports = (get(rule, "protocol"), get(rule, "fromPort"), get(rule, "toPort"))
        if any(is_anywhere(c) for c in cidrs) and not (exempt_group and _https_only(*ports)):
            yield _open_ingress_message("Security group", name, _describe(*ports))


def _security_group_rule(props: Mapping[str, Any], name: str) -> Iterator[str]:
    cidrs = items(get(props, "cidrBlocks")) + items(get(props, "ipv6CidrBlocks"))
    if get(props, "type") == "ingress" and any(is_anywhere(c) for c in cidrs):
        ports = (get(props, "protocol"), get(props, "fromPort"), get(props, "toPort"))
        yield _open_ingress_message("Security group rule", name, _describe(*ports))


def _ingress_rule(props: Mapping[str, Any], name: str) -> Iterator[str]:
    cidrs = [get(props, "cidrIpv4"), get(props, "cidrIpv6")]
    ports = (get(props, "ipProtocol"), get(props, "fromPort"), get(props, "toPort"))
    exempt = _is_public_lb(get(props, "tags")) and _https_only(*ports)
    if any(is_anywhere(c) for c in cidrs) and not exempt:
        yield _open_ingress_message("Security group ingress rule", name, _describe(*ports))


def _firewall(props: Mapping[str, Any], name: str) -> Iterator[str]:
    if get(props, "direction", default="INGRESS") != "INGRESS" or get(props, "disabled"):
        return
    sources = items(get(props, "sourceRanges"))
    # With no source at all, GCP applies an ingress rule to every address.
    unscoped = (
        not sources and not get(props, "sourceTags") and not get(props, "sourceServiceAccounts")
    )
    if get(props, "allows") and (unscoped or any(is_anywhere(s) for s in sources)):
        opened = ", ".join(
            f"{get(a, 'protocol')} {','.join(str(p) for p in items(get(a, 'ports'))) or 'all'}"
            for a in items(get(props, "allows"))
        )
        yield (
            f"Firewall '{name}': allows {opened} from 0.0.0.0/0; the private site takes "
            "traffic only from the VPN, the admin networks and Google's health checks"
        )


def _load_balancer_service(props: Mapping[str, Any], name: str) -> Iterator[str]:
    """The cloud turns a LoadBalancer Service's source ranges into security-group ingress;
    none given means 0.0.0.0/0."""
    if get(props, "spec", "type") != "LoadBalancer":
        return
    sources = items(get(props, "spec", "loadBalancerSourceRanges"))
    if sources and not any(is_anywhere(s) for s in sources):
        return
    for port in items(get(props, "spec", "ports")):
        number = as_number(get(port, "port"), -1)
        if number != HTTPS_PORT:
            yield (
                f"LoadBalancer Service '{name}' admits 0.0.0.0/0 (loadBalancerSourceRanges) on "
                f"port {number:g}; only 443 may be open to everyone, or list the client networks"
            )


NO_OPEN_INGRESS = ResourcePolicy(
    "no-open-ingress",
    "No security group or firewall admits traffic from 0.0.0.0/0, except HTTPS on the "
    "public load balancer.",
    Severity.CRITICAL,
    [
        ResourceRule(
            "aws",
            "security groups: no 0.0.0.0/0 ingress but 443 on the public LB",
            {
                AWS_SECURITY_GROUP: _security_group,
                AWS_DEFAULT_SECURITY_GROUP: _security_group,
                AWS_SECURITY_GROUP_RULE: _security_group_rule,
                AWS_INGRESS_RULE: _ingress_rule,
            },
        ),
        ResourceRule("gcp", "firewalls: no 0.0.0.0/0 ingress", {GCP_FIREWALL: _firewall}),
        ResourceRule(
            "kubernetes",
            "LoadBalancer Services: open to 0.0.0.0/0 only on 443",
            {K8S_SERVICE: _load_balancer_service},
        ),
    ],
)
