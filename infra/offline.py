"""Run the real stack program in-process under Pulumi mocks: no CLI, no cloud, no credentials.

``evaluate_stack("prod")`` reads ``Pulumi.prod.yaml`` (with the project's defaults),
validates it, runs ``infra/__main__.py`` against a recording mock monitor and returns
every registered resource with its inputs (camelCase, as the engine receives them) and
the outputs the mocks fabricated for it. The fabricated outputs look like the real
ones - ARNs, EKS OIDC issuers, VPN tunnel outside and inside addresses, HA VPN
interface IPs, service-agent emails - so that tests can follow the wiring from one
resource to the next. With ``preview=True`` every computed output stays unknown, as in
``pulumi preview`` before anything exists.

Tests, the offline policy review and the benchmark all use this one harness; it can
run several stacks one after another in the same process.
"""

import asyncio
import base64
import hashlib
import ipaddress
import json
import logging
import runpy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi.output import Unknown as _PulumiUnknown
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockCallArgs, MockEngine, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.mocks import MockSettings as _MockSettings
from pulumi.runtime.stack import run_in_stack

from hybrid.config import StackConfig, parse_stack_config, read_stack_file
from hybrid.paths import PROJECT_ROOT

PROJECT = "hybrid"
PROGRAM = PROJECT_ROOT / "infra" / "__main__.py"


class _UnknownValue:
    """A value the engine does not know yet (preview before the resource exists)."""

    _instance: "_UnknownValue | None" = None

    def __new__(cls) -> "_UnknownValue":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _UnknownValue()


@dataclass(frozen=True)
class MockedResource:
    """One registered resource as the engine saw it."""

    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    """Inputs with camelCase keys; secrets unwrapped (see ``secret_inputs``), unknowns UNKNOWN."""
    outputs: dict[str, Any]
    """What the mocks returned: the inputs plus fabricated computed properties."""
    parent: str | None
    """URN of the parent (the stack for top-level resources)."""
    provider: str | None
    """URN of the explicit provider, or None where the engine would use a default provider."""
    custom: bool
    """False for component resources."""
    secret_inputs: frozenset[str] = frozenset()
    """Top-level input keys whose value is (or contains) a secret."""
    id: str = ""
    """The physical ID the mocks gave it ("" for components and in preview)."""
    dependencies: tuple[str, ...] = ()
    """URNs it depends on: explicit ``depends_on`` plus the resources its inputs came from."""
    timeouts: dict[str, str] = field(default_factory=dict)
    """Its ``custom_timeouts`` (``create``, ``update``, ``delete``), where set."""


@dataclass
class StackEvaluation:
    """Everything one mocked run of the program produced."""

    stack: str
    preview: bool
    config: StackConfig
    resources: list[MockedResource]
    """In the order the engine received them (RPCs complete concurrently, so this is close
    to, not exactly, the program's construction order)."""
    outputs: dict[str, Any]
    secret_outputs: set[str]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    """Warnings the program logged (deprecated inputs, for instance)."""

    def of_type(self, type_: str) -> list[MockedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> MockedResource:
        matches = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(matches) != 1:
            raise LookupError(f"expected one {type_} named {name!r}, found {len(matches)}")
        return matches[0]

    def by_urn(self, urn: str) -> MockedResource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise LookupError(f"no resource with URN {urn}")

    def children_of(self, parent: MockedResource) -> list[MockedResource]:
        return [r for r in self.resources if r.parent == parent.urn]

    def counts_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for resource in self.resources:
            counts[resource.type] = counts.get(resource.type, 0) + 1
        return dict(sorted(counts.items()))


def evaluate_stack(
    stack: str, *, preview: bool = False, config_overrides: Mapping[str, Any] | None = None
) -> StackEvaluation:
    """Run ``infra/__main__.py`` for ``stack`` under mocks and return what it registered.

    ``config_overrides`` replaces stack config values (native Python values; ``None``
    removes a key). A bad config raises ``ConfigError`` before anything runs.
    """
    raw = read_stack_file(stack)
    for key, value in (config_overrides or {}).items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    config = parse_stack_config(stack, raw)

    warnings: list[str] = []
    monitor = _RecordingMonitor(_FabricatingMocks(config, preview))
    _configure_runtime(stack, preview, monitor, warnings)
    set_all_config({key: _engine_string(value) for key, value in raw.items()}, [])

    def program() -> None:
        runpy.run_path(str(PROGRAM))

    started = time.perf_counter()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(run_in_stack(program))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        settings.ROOT.set(None)
    seconds = time.perf_counter() - started

    outputs, secret_outputs = monitor.stack_outputs()
    return StackEvaluation(
        stack=stack,
        preview=preview,
        config=config,
        resources=list(monitor.records),
        outputs=outputs,
        secret_outputs=secret_outputs,
        seconds=seconds,
        warnings=warnings,
    )


# --- runtime plumbing ---------------------------------------------------------


def _configure_runtime(
    stack: str, preview: bool, monitor: MockMonitor, warnings: list[str]
) -> None:
    """Point the Pulumi runtime at ``monitor``, with a fresh root, as ``pulumi up`` would."""
    settings.reset_options(project=PROJECT, stack=stack, preview=preview)
    logger = logging.getLogger(f"hybrid.offline.{stack}")
    logger.propagate = False
    logger.handlers = [_ListHandler(warnings)]
    settings.configure(
        _MockSettings(
            monitor=monitor,
            monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
            engine=MockEngine(logger),
            project=PROJECT,
            stack=stack,
            dry_run=preview,
            organization="organization",
            callbacks=None,
        )
    )


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


class _RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping parent, provider and secrets of each resource."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.records: list[MockedResource] = []
        self._stack_urn: str | None = None
        self._stack_outputs: Any = None

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self._stack_urn = response.urn
            return response
        raw_inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        inputs = {key: _plain(value)[0] for key, value in raw_inputs.items()}
        secret = frozenset(key for key, value in raw_inputs.items() if _plain(value)[1])
        state = self.resources[response.urn].state
        self.records.append(
            MockedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                inputs=inputs,
                outputs={key: _plain(value)[0] for key, value in state.items()},
                parent=request.parent or None,
                provider=request.provider.rsplit("::", 1)[0] if request.provider else None,
                custom=bool(request.custom),
                secret_inputs=secret,
                id=response.id,
                dependencies=tuple(request.dependencies),
                timeouts={
                    operation: getattr(request.customTimeouts, operation)
                    for operation in ("create", "update", "delete")
                    if getattr(request.customTimeouts, operation)
                },
            )
        )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn == self._stack_urn:
            self._stack_outputs = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        return super().RegisterResourceOutputs(request)

    def stack_outputs(self) -> tuple[dict[str, Any], set[str]]:
        raw = self._stack_outputs or {}
        plain = {key: _plain(value) for key, value in raw.items()}
        return {k: v for k, (v, _) in plain.items()}, {k for k, (_, s) in plain.items() if s}


def _plain(value: Any) -> tuple[Any, bool]:
    """``value`` with secret wrappers removed and unknowns as UNKNOWN; True if it held a secret."""
    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))[0], True
    if isinstance(value, _PulumiUnknown) or value == rpc.UNKNOWN:
        return UNKNOWN, False
    if isinstance(value, dict):
        items = {k: _plain(v) for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, any(s for _, s in items.values())
    if isinstance(value, list):
        elements = [_plain(v) for v in value]
        return [v for v, _ in elements], any(s for _, s in elements)
    if isinstance(value, float) and value.is_integer():
        return int(value), False  # the wire only knows doubles
    return value, False


def _merge(inputs: dict[str, Any], computed: dict[str, Any]) -> dict[str, Any]:
    """Inputs overlaid with computed properties, nested objects merged key by key."""
    merged = dict(inputs)
    for key, value in computed.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _unknown_like(computed: dict[str, Any]) -> dict[str, Any]:
    """The same keys, every leaf replaced by the engine's unknown marker."""
    return {
        key: _unknown_like(value) if isinstance(value, dict) else rpc.UNKNOWN
        for key, value in computed.items()
    }


def _engine_string(value: Any) -> str:
    """Config as the engine hands it to the program: strings as-is, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


# --- fabricated outputs ---------------------------------------------------------

Fabricator = Callable[["_FabricatingMocks", str, dict[str, Any]], tuple[str, dict[str, Any]]]
_FABRICATORS: dict[str, Fabricator] = {}


def _fabricates(*tokens: str) -> Callable[[Fabricator], Fabricator]:
    def register(function: Fabricator) -> Fabricator:
        for token in tokens:
            _FABRICATORS[token] = function
        return function

    return register


def fabricated_types() -> frozenset[str]:
    """Resource types for which the mocks invent realistic computed outputs."""
    return frozenset(_FABRICATORS)


class _FabricatingMocks(Mocks):
    """Deterministic, realistic outputs: the same stack always yields the same IDs."""

    def __init__(self, config: StackConfig, preview: bool) -> None:
        self.config = config
        self.preview = preview
        self.stack = config.stack
        self.aws_region = config.public.region
        self.account_id = str(int(self.digest("account"), 16))[:12].rjust(12, "1")
        self.project = config.private.project
        self.gcp_region = config.private.region
        self.project_number = str(int(self.digest("project", self.project), 16))[:12]
        self.by_id: dict[str, dict[str, Any]] = {}

    # -- Mocks interface --

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = {k: v for k, v in args.inputs.items() if not isinstance(v, _PulumiUnknown)}
        plain = {key: _plain(value)[0] for key, value in inputs.items()}
        fabricate = _FABRICATORS.get(args.typ, _fabricate_default)
        if self.preview:
            # Nothing exists yet: the outputs have their real shape, but only what the
            # program passed in is known; everything the provider computes is unknown.
            try:
                extra = fabricate(self, args.name, plain)[1]
            except (KeyError, TypeError, ValueError, AttributeError):
                extra = {}  # the fabricator needed an input that is itself unknown
            return "", _merge(inputs, _unknown_like(extra))
        id_, extra = fabricate(self, args.name, plain)
        state = _merge(inputs, extra)
        self.by_id.setdefault(id_, state)  # S3 settings reuse their bucket's ID
        return id_, state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        handler = _CALLS.get(args.token)
        if handler is None:
            raise NotImplementedError(
                f"infra/offline.py has no mock for the invoke {args.token}; add one to _CALLS"
            )
        return handler(self, {k: _plain(v)[0] for k, v in args.args.items()}), []

    # -- helpers for fabricators --

    def digest(self, *parts: str) -> str:
        return hashlib.sha256("/".join((self.stack, *parts)).encode()).hexdigest()

    def hex(self, *parts: str, length: int = 17) -> str:
        return self.digest(*parts)[:length]

    def ip(self, network: str, *parts: str) -> str:
        net = ipaddress.IPv4Network(network)
        offset = int(self.digest("ip", *parts), 16) % (net.num_addresses - 2) + 1
        return str(net.network_address + offset)

    def aws_arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.aws_region if regional else ""
        return f"arn:aws:{service}:{region}:{self.account_id}:{resource}"

    def gcp_link(self, resource_id: str) -> str:
        return f"https://www.googleapis.com/compute/v1/{resource_id}"

    def gcp_region_of(self, inputs: dict[str, Any]) -> str:
        return inputs.get("region") or inputs.get("location") or self.gcp_region

    def pem(self, kind: str, *parts: str) -> str:
        body = base64.b64encode(bytes.fromhex(self.digest(kind, *parts) * 6)).decode()
        lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n"


def _fabricate_default(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return f"{name}-{mocks.hex(name, length=8)}", {}


def _autoname(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any], key: str) -> str:
    """The name the provider would pick: the given one, or the logical name plus a suffix."""
    return inputs.get(key) or f"{name}-{mocks.hex('autoname', name, length=7)}"


# AWS ------------------------------------------------------------------------------

# EC2 resource type -> (ID prefix, ARN resource type or None)
_EC2_IDS = {
    "aws:ec2/vpc:Vpc": ("vpc", "vpc"),
    "aws:ec2/subnet:Subnet": ("subnet", "subnet"),
    "aws:ec2/internetGateway:InternetGateway": ("igw", "internet-gateway"),
    "aws:ec2/natGateway:NatGateway": ("nat", "natgateway"),
    "aws:ec2/routeTable:RouteTable": ("rtb", "route-table"),
    "aws:ec2/route:Route": ("r-rtb", None),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("rtbassoc", None),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("sg", "security-group"),
    "aws:ec2/securityGroup:SecurityGroup": ("sg", "security-group"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ("sgr", None),
    "aws:ec2/flowLog:FlowLog": ("fl", "vpc-flow-log"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("vpce", "vpc-endpoint"),
    "aws:ec2/launchTemplate:LaunchTemplate": ("lt", "launch-template"),
    "aws:ec2/customerGateway:CustomerGateway": ("cgw", "customer-gateway"),
    "aws:ec2transitgateway/transitGateway:TransitGateway": ("tgw", "transit-gateway"),
    "aws:ec2transitgateway/vpcAttachment:VpcAttachment":
        ("tgw-attach", "transit-gateway-attachment"),
    "aws:ec2transitgateway/routeTable:RouteTable": ("tgw-rtb", "transit-gateway-route-table"),
}  # fmt: skip


def _ec2_for(token: str) -> Fabricator:
    prefix, arn_type = _EC2_IDS[token]

    def fabricate(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
        id_ = f"{prefix}-{mocks.hex(token, name)}"
        outputs: dict[str, Any] = {"ownerId": mocks.account_id}
        if arn_type:
            outputs["arn"] = mocks.aws_arn("ec2", f"{arn_type}/{id_}")
        if token == "aws:ec2/vpc:Vpc":
            outputs |= {
                "defaultSecurityGroupId": f"sg-{mocks.hex('default-sg', name)}",
                "mainRouteTableId": f"rtb-{mocks.hex('main-rtb', name)}",
                "defaultNetworkAclId": f"acl-{mocks.hex('default-acl', name)}",
            }
        elif token == "aws:ec2/launchTemplate:LaunchTemplate":
            outputs |= {"latestVersion": 1, "defaultVersion": 1}
        elif token == "aws:ec2transitgateway/transitGateway:TransitGateway":
            outputs |= {
                "associationDefaultRouteTableId": f"tgw-rtb-{mocks.hex('assoc', name)}",
                "propagationDefaultRouteTableId": f"tgw-rtb-{mocks.hex('prop', name)}",
            }
        return id_, outputs

    return fabricate


for _token in _EC2_IDS:
    _FABRICATORS[_token] = _ec2_for(_token)


@_fabricates("aws:ec2/eip:Eip")
def _eip(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    id_ = f"eipalloc-{mocks.hex('eip', name)}"
    return id_, {
        "allocationId": id_,
        "publicIp": mocks.ip("3.208.0.0/12", "eip", name),
        "domain": "vpc",
    }


@_fabricates("aws:ec2/vpnConnection:VpnConnection")
def _vpn_connection(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    """Two tunnels with public outside addresses; the /30 inside ranges split as AWS does:
    the first host is AWS's side (VGW), the second the customer gateway's."""
    tgw = mocks.by_id.get(inputs.get("transitGatewayId", ""), {})
    outputs: dict[str, Any] = {
        "arn": mocks.aws_arn("ec2", f"vpn-connection/vpn-{mocks.hex('vpn', name)}"),
        "transitGatewayAttachmentId": f"tgw-attach-{mocks.hex('vpn-attach', name)}",
        "customerGatewayConfiguration": "<vpn_connection/>",
    }
    for tunnel in (1, 2):
        inside = ipaddress.IPv4Network(inputs[f"tunnel{tunnel}InsideCidr"])
        hosts = list(inside.hosts())
        outputs |= {
            f"tunnel{tunnel}Address": mocks.ip("52.0.0.0/11", "vpn", name, str(tunnel)),
            f"tunnel{tunnel}VgwInsideAddress": str(hosts[0]),
            f"tunnel{tunnel}CgwInsideAddress": str(hosts[1]),
            f"tunnel{tunnel}BgpAsn": str(tgw.get("amazonSideAsn", 64512)),
            f"tunnel{tunnel}BgpHoldtime": 30,
        }
    return f"vpn-{mocks.hex('vpn', name)}", outputs


@_fabricates(
    "aws:ec2transitgateway/routeTableAssociation:RouteTableAssociation",
    "aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation",
)
def _tgw_route_table_link(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return f"{inputs['transitGatewayRouteTableId']}_{inputs['transitGatewayAttachmentId']}", {}


@_fabricates("aws:kms/key:Key")
def _kms_key(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    digest = mocks.digest("kms", name)
    key_id = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    return key_id, {"keyId": key_id, "arn": mocks.aws_arn("kms", f"key/{key_id}")}


@_fabricates("aws:kms/alias:Alias")
def _kms_alias(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    alias = _autoname(mocks, name, inputs, "name")
    target = mocks.by_id.get(inputs.get("targetKeyId", ""), {})
    return alias, {
        "arn": mocks.aws_arn("kms", alias),
        "targetKeyArn": target.get("arn", inputs.get("targetKeyId")),
    }


@_fabricates("aws:cloudwatch/logGroup:LogGroup")
def _log_group(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    group = _autoname(mocks, name, inputs, "name")
    return group, {"name": group, "arn": mocks.aws_arn("logs", f"log-group:{group}")}


@_fabricates("aws:iam/role:Role")
def _iam_role(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    role = _autoname(mocks, name, inputs, "name")
    return role, {
        "name": role,
        "arn": mocks.aws_arn("iam", f"role/{role}", regional=False),
        "uniqueId": "AROA" + mocks.hex("role", name, length=17).upper(),
    }


@_fabricates("aws:iam/policy:Policy")
def _iam_policy(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    policy = _autoname(mocks, name, inputs, "name")
    arn = mocks.aws_arn("iam", f"policy/{policy}", regional=False)
    return arn, {"name": policy, "arn": arn, "policyId": "ANPA" + mocks.hex("p", name).upper()}


@_fabricates("aws:iam/rolePolicy:RolePolicy")
def _iam_role_policy(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    policy = _autoname(mocks, name, inputs, "name")
    return f"{inputs.get('role')}:{policy}", {"name": policy}


@_fabricates("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def _iam_attachment(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return f"{inputs.get('role')}-{mocks.hex('attach', name, length=8)}", {}


@_fabricates("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
def _oidc_provider(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    host = str(inputs["url"]).removeprefix("https://")
    arn = mocks.aws_arn("iam", f"oidc-provider/{host}", regional=False)
    return arn, {"arn": arn, "thumbprintLists": inputs.get("thumbprintLists") or []}


@_fabricates("aws:eks/cluster:Cluster")
def _eks_cluster(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    cluster = _autoname(mocks, name, inputs, "name")
    oidc_id = mocks.hex("oidc", cluster, length=32).upper()
    vpc_config = dict(inputs.get("vpcConfig") or {})
    vpc_config |= {
        "clusterSecurityGroupId": f"sg-{mocks.hex('cluster-sg', cluster)}",
        "vpcId": f"vpc-{mocks.hex('aws:ec2/vpc:Vpc', 'from-subnets')}",
    }
    return cluster, {
        "name": cluster,
        "arn": mocks.aws_arn("eks", f"cluster/{cluster}"),
        "endpoint": f"https://{oidc_id}.gr7.{mocks.aws_region}.eks.amazonaws.com",
        "certificateAuthority": {
            "data": base64.b64encode(mocks.pem("CERTIFICATE", "eks-ca", cluster).encode()).decode()
        },
        "identities": [
            {"oidcs": [{"issuer": f"https://oidc.eks.{mocks.aws_region}.amazonaws.com/id/{oidc_id}"}]}
        ],
        "vpcConfig": vpc_config,
        "status": "ACTIVE",
        "platformVersion": "eks.10",
        "version": inputs.get("version", "1.33"),
        "clusterId": mocks.hex("cluster-id", cluster, length=32),
    }  # fmt: skip


@_fabricates("aws:eks/addon:Addon")
def _eks_addon(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    addon = inputs["addonName"]
    return f"{inputs['clusterName']}:{addon}", {
        "arn": mocks.aws_arn("eks", f"addon/{inputs['clusterName']}/{addon}/{mocks.hex(name)}"),
        "addonVersion": inputs.get("addonVersion") or "v1.0.0-eksbuild.1",
    }


@_fabricates("aws:eks/nodeGroup:NodeGroup")
def _eks_node_group(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    group = _autoname(mocks, name, inputs, "nodeGroupName")
    cluster = inputs["clusterName"]
    return f"{cluster}:{group}", {
        "nodeGroupName": group,
        "arn": mocks.aws_arn("eks", f"nodegroup/{cluster}/{group}/{mocks.hex('ng', name)}"),
        "status": "ACTIVE",
        "resources": [{"autoscalingGroups": [{"name": f"eks-{group}-{mocks.hex('asg', name)}"}]}],
    }


@_fabricates("aws:autoscaling/tag:Tag")
def _autoscaling_tag(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    """The provider's ID: the Auto Scaling group and the tag key."""
    return f"{inputs['autoscalingGroupName']},{inputs['tag']['key']}", {}


@_fabricates(
    "aws:eks/accessEntry:AccessEntry", "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
)
def _eks_access(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    cluster = inputs["clusterName"]
    arn = mocks.aws_arn("eks", f"access-entry/{cluster}/{mocks.hex(name)}")
    return f"{cluster}#{inputs['principalArn']}", {"accessEntryArn": arn}


@_fabricates("aws:acm/certificate:Certificate")
def _acm_certificate(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    arn = mocks.aws_arn("acm", f"certificate/{mocks.hex('acm', name, length=8)}")
    return arn, {"arn": arn, "status": "ISSUED", "type": "IMPORTED"}


@_fabricates("aws:s3/bucketObjectv2:BucketObjectv2")
def _s3_object(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    key = inputs["key"]
    return key, {
        "versionId": mocks.hex("version", key, length=32),
        "etag": mocks.hex("etag", key, length=32),
    }


@_fabricates("aws:s3/bucket:Bucket")
def _s3_bucket(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    bucket = inputs.get("bucket") or f"{name}-{mocks.hex('bucket', name, length=7)}"
    return bucket, {
        "bucket": bucket,
        "arn": f"arn:aws:s3:::{bucket}",
        "bucketDomainName": f"{bucket}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{bucket}.s3.{mocks.aws_region}.amazonaws.com",
        "region": mocks.aws_region,
        "hostedZoneId": "Z3AQBSTGFYJSTF",
    }


@_fabricates(
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketLogging:BucketLogging",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
)
def _s3_bucket_setting(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return str(inputs["bucket"]), {}


# GCP ------------------------------------------------------------------------------


def _gcp_global(kind: str) -> Fabricator:
    def fabricate(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
        resource = _autoname(mocks, name, inputs, "name")
        id_ = f"projects/{mocks.project}/global/{kind}/{resource}"
        return id_, {"name": resource, "selfLink": mocks.gcp_link(id_), "project": mocks.project}

    return fabricate


def _gcp_regional(kind: str) -> Fabricator:
    def fabricate(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
        resource = _autoname(mocks, name, inputs, "name")
        region = mocks.gcp_region_of(inputs)
        id_ = f"projects/{mocks.project}/regions/{region}/{kind}/{resource}"
        return id_, {
            "name": resource,
            "region": region,
            "selfLink": mocks.gcp_link(id_),
            "project": mocks.project,
        }

    return fabricate


_FABRICATORS |= {
    "gcp:compute/network:Network": _gcp_global("networks"),
    "gcp:compute/firewall:Firewall": _gcp_global("firewalls"),
    "gcp:compute/externalVpnGateway:ExternalVpnGateway": _gcp_global("externalVpnGateways"),
    "gcp:compute/router:Router": _gcp_regional("routers"),
}


@_fabricates("gcp:compute/subnetwork:Subnetwork")
def _subnetwork(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    id_, outputs = _gcp_regional("subnetworks")(mocks, name, inputs)
    gateway = next(ipaddress.IPv4Network(inputs["ipCidrRange"]).hosts())
    return id_, outputs | {"gatewayAddress": str(gateway)}


@_fabricates("gcp:compute/haVpnGateway:HaVpnGateway")
def _ha_vpn_gateway(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    id_, outputs = _gcp_regional("vpnGateways")(mocks, name, inputs)
    interfaces = [
        {"id": i, "ipAddress": mocks.ip("35.242.0.0/16", "ha-vpn", name, str(i))} for i in (0, 1)
    ]
    return id_, outputs | {"vpnInterfaces": interfaces}


@_fabricates("gcp:compute/vPNTunnel:VPNTunnel")
def _vpn_tunnel(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    id_, outputs = _gcp_regional("vpnTunnels")(mocks, name, inputs)
    return id_, outputs | {
        "tunnelId": str(int(mocks.hex("tunnel", name), 16))[:19],
        "detailedStatus": "Tunnel is up and running.",
        "sharedSecretHash": mocks.hex("psk-hash", name, length=27),
    }


@_fabricates(
    "gcp:compute/routerInterface:RouterInterface",
    "gcp:compute/routerPeer:RouterPeer",
    "gcp:compute/routerNat:RouterNat",
)
def _router_part(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    part = _autoname(mocks, name, inputs, "name")
    region = mocks.gcp_region_of(inputs)
    return f"{mocks.project}/{region}/{inputs.get('router')}/{part}", {"name": part}


@_fabricates("gcp:compute/networkPeeringRoutesConfig:NetworkPeeringRoutesConfig")
def _peering_routes(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return (
        f"projects/{mocks.project}/global/networks/{inputs['network']}/networkPeerings/{inputs['peering']}",
        {},
    )


@_fabricates("gcp:kms/keyRing:KeyRing")
def _key_ring(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    ring = _autoname(mocks, name, inputs, "name")
    return f"projects/{mocks.project}/locations/{inputs['location']}/keyRings/{ring}", {
        "name": ring
    }


@_fabricates("gcp:kms/cryptoKey:CryptoKey")
def _crypto_key(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    key = _autoname(mocks, name, inputs, "name")
    return f"{inputs['keyRing']}/cryptoKeys/{key}", {
        "name": key,
        "primaries": [{"state": "ENABLED"}],
    }


@_fabricates(
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
    "gcp:projects/iAMMember:IAMMember",
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:serviceaccount/iAMMember:IAMMember",
)
def _iam_member(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    scope = inputs.get("cryptoKeyId") or inputs.get("bucket") or inputs.get("project") or ""
    scope = scope or inputs.get("serviceAccountId", "")
    return f"{scope}/{inputs['role']}/{inputs['member']}", {"etag": "BwY" + mocks.hex("etag", name)}


@_fabricates("gcp:projects/iAMAuditConfig:IAMAuditConfig")
def _audit_config(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return f"{inputs['project']}/{inputs['service']}", {"etag": "BwY" + mocks.hex("etag", name)}


@_fabricates("gcp:serviceaccount/account:Account")
def _service_account(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    email = f"{inputs['accountId']}@{mocks.project}.iam.gserviceaccount.com"
    id_ = f"projects/{mocks.project}/serviceAccounts/{email}"
    return id_, {
        "email": email,
        "name": id_,
        "member": f"serviceAccount:{email}",
        "uniqueId": str(int(mocks.hex("sa", name), 16))[:21],
    }


@_fabricates("gcp:storage/bucketObject:BucketObject")
def _gcs_object(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    bucket, key = inputs["bucket"], inputs["name"]
    link = f"https://www.googleapis.com/storage/v1/b/{bucket}/o/{key.replace('/', '%2F')}"
    return f"{bucket}-{key}", {
        "outputName": key,
        "selfLink": link,
        "mediaLink": f"{link}?alt=media",
        "generation": int(mocks.hex("generation", key, length=12), 16),
        "md5hash": base64.b64encode(bytes.fromhex(mocks.hex("md5", key, length=32))).decode(),
    }


@_fabricates("gcp:storage/bucket:Bucket")
def _gcs_bucket(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    bucket = inputs.get("name") or f"{name}-{mocks.hex('bucket', name, length=7)}"
    return bucket, {
        "name": bucket,
        "url": f"gs://{bucket}",
        "selfLink": f"https://www.googleapis.com/storage/v1/b/{bucket}",
        "project": mocks.project,
        "projectNumber": int(mocks.project_number),
    }


@_fabricates("gcp:container/cluster:Cluster")
def _gke_cluster(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    cluster = _autoname(mocks, name, inputs, "name")
    location = inputs.get("location") or mocks.gcp_region
    id_ = f"projects/{mocks.project}/locations/{location}/clusters/{cluster}"
    endpoints = json.loads(json.dumps(inputs.get("controlPlaneEndpointsConfig") or {}))
    dns = endpoints.setdefault("dnsEndpointConfig", {})
    dns["endpoint"] = (
        f"gke-{mocks.hex('dns', cluster, length=32)}-{mocks.project_number}.{location}.gke.goog"
    )
    private = dict(inputs.get("privateClusterConfig") or {})
    control_plane = ipaddress.IPv4Network(private.get("masterIpv4CidrBlock", "172.16.0.0/28"))
    private |= {
        "privateEndpoint": str(control_plane.network_address + 2),
        "publicEndpoint": mocks.ip("34.16.0.0/12", "gke", cluster),
        "peeringName": f"gke-n{mocks.hex('peer', cluster, length=14)}-{mocks.hex('p2', cluster, length=4)}-peer",  # noqa: E501
    }
    ca = base64.b64encode(mocks.pem("CERTIFICATE", "gke-ca", cluster).encode()).decode()
    return id_, {
        "name": cluster,
        "location": location,
        "endpoint": private["publicEndpoint"],
        "masterAuth": {"clusterCaCertificate": ca},
        "controlPlaneEndpointsConfig": endpoints,
        "privateClusterConfig": private,
        "selfLink": f"https://container.googleapis.com/v1/{id_}",
        "masterVersion": "1.33.4-gke.1350000",
        "project": mocks.project,
    }


@_fabricates("gcp:container/nodePool:NodePool")
def _gke_node_pool(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    pool = _autoname(mocks, name, inputs, "name")
    id_ = f"{inputs['cluster']}/nodePools/{pool}"
    group = f"gke-{pool}-{mocks.hex('mig', name, length=8)}-grp"
    return id_, {
        "name": pool,
        "instanceGroupUrls": [
            mocks.gcp_link(
                f"projects/{mocks.project}/zones/{mocks.gcp_region}-a/instanceGroupManagers/{group}"
            )
        ],
        "version": "1.33.4-gke.1350000",
    }


# random, tls, kubernetes ------------------------------------------------------------


@_fabricates("random:index/randomPassword:RandomPassword")
def _random_password(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    """Honours length and the special-character set. Starts with '0' on purpose: AWS refuses
    VPN keys that do, so the program must cope with it."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    alphabet += inputs.get("overrideSpecial", "") if inputs.get("special", True) else ""
    stream = bytes.fromhex(mocks.digest("password", name) * 4)
    length = int(inputs.get("length", 16))
    body = "".join(alphabet[b % len(alphabet)] for b in stream)
    result = ("0Aa7" + body)[:length]
    return "none", {
        "result": result,
        "bcryptHash": "$2a$10$" + mocks.hex("bcrypt", name, length=53),
    }


@_fabricates("tls:index/privateKey:PrivateKey")
def _private_key(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return mocks.hex("key-id", name, length=40), {
        "privateKeyPem": mocks.pem("PRIVATE KEY", "private", name),
        "privateKeyPemPkcs8": mocks.pem("PRIVATE KEY", "private", name),
        "publicKeyPem": mocks.pem("PUBLIC KEY", "public", name),
        "publicKeyFingerprintSha256": "SHA256:" + mocks.hex("fp", name, length=43),
    }


@_fabricates(
    "tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"
)
def _certificate(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return str(int(mocks.hex("serial", name, length=30), 16)), {
        "certPem": mocks.pem("CERTIFICATE", "cert", name),
        "validityStartTime": "2025-01-01T00:00:00Z",
        "validityEndTime": "2026-01-01T00:00:00Z",
        "readyForRenewal": False,
    }


@_fabricates("tls:index/certRequest:CertRequest")
def _cert_request(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return mocks.hex("csr", name, length=40), {
        "certRequestPem": mocks.pem("CERTIFICATE REQUEST", "csr", name)
    }


def _provider(mocks: _FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    digest = mocks.digest("provider", name)
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}", {}


for _token in ("pulumi:providers:aws", "pulumi:providers:gcp", "pulumi:providers:kubernetes",
               "pulumi:providers:random", "pulumi:providers:tls"):  # fmt: skip
    _FABRICATORS[_token] = _provider


# Invokes ---------------------------------------------------------------------------

_CALLS: dict[str, Callable[[_FabricatingMocks, dict[str, Any]], dict[str, Any]]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": lambda m, a: {
        "accountId": m.account_id,
        "arn": f"arn:aws:iam::{m.account_id}:user/ci",
        "userId": "AIDA" + m.hex("user").upper(),
        "id": m.account_id,
    },
    "aws:index/getPartition:getPartition": lambda m, a: {
        "partition": "aws",
        "dnsSuffix": "amazonaws.com",
        "reverseDnsPrefix": "com.amazonaws",
        "id": "aws",
    },
    "aws:index/getRegion:getRegion": lambda m, a: {
        "region": m.aws_region,
        "name": m.aws_region,
        "id": m.aws_region,
        "endpoint": f"ec2.{m.aws_region}.amazonaws.com",
        "description": m.aws_region,
    },
    "gcp:organizations/getProject:getProject": lambda m, a: {
        "projectId": a.get("projectId") or m.project,
        "number": m.project_number,
        "name": a.get("projectId") or m.project,
        "id": f"projects/{a.get('projectId') or m.project}",
    },
    "gcp:storage/getProjectServiceAccount:getProjectServiceAccount": lambda m, a: {
        "emailAddress": f"service-{m.project_number}@gs-project-accounts.iam.gserviceaccount.com",
        "member": f"serviceAccount:service-{m.project_number}@gs-project-accounts.iam.gserviceaccount.com",  # noqa: E501
        "project": a.get("project") or m.project,
        "id": a.get("project") or m.project,
    },
}
