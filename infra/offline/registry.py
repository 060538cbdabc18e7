"""The fabricator registry and the mocks that use it: deterministic, realistic outputs.

A fabricator turns a resource's name and inputs into its physical ID and the properties the
provider would compute; ``fabricates`` is the one way to register one, per resource type.
"""

import base64
import hashlib
import ipaddress
from collections.abc import Callable
from typing import Any

from pulumi.output import Unknown as _PulumiUnknown
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

from hybrid.config import StackConfig
from infra.offline.engine import merge, plain_value, unknown_like

Fabricator = Callable[["FabricatingMocks", str, dict[str, Any]], tuple[str, dict[str, Any]]]
FABRICATORS: dict[str, Fabricator] = {}
Invoke = Callable[["FabricatingMocks", dict[str, Any]], dict[str, Any]]
INVOKES: dict[str, Invoke] = {}


def fabricates(*tokens: str) -> Callable[[Fabricator], Fabricator]:
    def register(function: Fabricator) -> Fabricator:
        for token in tokens:
            FABRICATORS[token] = function
        return function

    return register


def fabricated_types() -> frozenset[str]:
    """Resource types for which the mocks invent realistic computed outputs."""
    return frozenset(FABRICATORS)


class FabricatingMocks(Mocks):
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
        plain = {key: plain_value(value)[0] for key, value in inputs.items()}
        fabricate = FABRICATORS.get(args.typ, _fabricate_default)
        if self.preview:
            # Nothing exists yet: the outputs have their real shape, but only what the
            # program passed in is known; everything the provider computes is unknown.
            try:
                extra = fabricate(self, args.name, plain)[1]
            except (KeyError, TypeError, ValueError, AttributeError):
                extra = {}  # the fabricator needed an input that is itself unknown
            return "", merge(inputs, unknown_like(extra))
        id_, extra = fabricate(self, args.name, plain)
        state = merge(inputs, extra)
        self.by_id.setdefault(id_, state)  # S3 settings reuse their bucket's ID
        return id_, state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        handler = INVOKES.get(args.token)
        if handler is None:
            raise NotImplementedError(
                f"infra/offline has no mock for the invoke {args.token}; add one in invokes.py"
            )
        return handler(self, {k: plain_value(v)[0] for k, v in args.args.items()}), []

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


def _fabricate_default(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return f"{name}-{mocks.hex(name, length=8)}", {}


def autoname(mocks: FabricatingMocks, name: str, inputs: dict[str, Any], key: str) -> str:
    """The name the provider would pick: the given one, or the logical name plus a suffix."""
    return inputs.get(key) or f"{name}-{mocks.hex('autoname', name, length=7)}"
