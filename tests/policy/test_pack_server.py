"""The real pack, started the way the Pulumi CLI starts it, agrees with the in-process engine.

The CLI runs ``python -m pulumi.policy <engine> <pack dir>`` with ``PULUMI_STACK`` set and
talks gRPC to the server that ``policy/__main__.py`` builds. This test does the same over
a loopback socket (no Pulumi CLI involved), then sends the analyzer the same resources
the in-process engine judges, and expects the same verdicts.
"""

import os
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel

from hybrid.paths import PROJECT_ROOT
from infra.offline import MockedResource
from policy import POLICIES
from policy.engine import Violation, enforcement_of, evaluate, wire_struct
from policy.pack_config import load_pack_config
from tests.policy.builders import resource

LEVELS = {proto.ADVISORY: "advisory", proto.MANDATORY: "mandatory"}
LEVEL_CODES = {
    EnforcementLevel.ADVISORY: proto.ADVISORY,
    EnforcementLevel.MANDATORY: proto.MANDATORY,
}


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    env = {
        **os.environ,
        "PULUMI_STACK": "dev",
        "PULUMI_PROJECT": "hybrid",
        "PULUMI_DRY_RUN": "true",
    }
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=PROJECT_ROOT / "policy",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        assert port.isdigit(), server.stderr.read() if server.stderr else "no port"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        server.terminate()
        server.wait(timeout=30)


def broken_resources() -> list[MockedResource]:
    return [
        resource("aws:kms/key:Key", "key", {"enableKeyRotation": False}),
        resource("aws:s3/bucket:Bucket", "bare", {}, outputs={"bucket": "bare-1"}),
        # Its key is a plain value of Pulumi.dev.yaml.
        resource(
            "gcp:compute/vPNTunnel:VPNTunnel",
            "tunnel",
            {"ikeVersion": 1, "sharedSecret": "us-east-1"},
        ),
        resource(
            "aws:eks/nodeGroup:NodeGroup",
            "gpu",
            {"amiType": "AL2023_x86_64_NVIDIA", "instanceTypes": ["p5.48xlarge"],
             "scalingConfig": {"minSize": 1, "maxSize": 2, "desiredSize": 1}},
        ),
    ]  # fmt: skip


def options() -> proto.AnalyzerResourceOptions:
    return proto.AnalyzerResourceOptions(
        customTimeouts=proto.AnalyzerResourceOptions.CustomTimeouts()
    )


def test_the_served_pack_lists_every_policy_with_the_stack_settings(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert [p.name for p in info.policies] == [p.name for p in POLICIES]
    assert {p.name: LEVELS[p.enforcementLevel] for p in info.policies} == {
        p.name: enforcement_of(p, None).value for p in POLICIES
    }
    settings = load_pack_config("dev")
    served = {
        name: json_format.MessageToDict(config.properties)
        for name, config in info.initialConfig.items()
    }
    assert served == settings


def test_the_served_pack_and_the_engine_agree(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    settings = load_pack_config("dev")
    configure = proto.ConfigureAnalyzerRequest()
    for name, values in settings.items():
        properties = struct_pb2.Struct()
        properties.update(values)
        level = next(enforcement_of(p, None) for p in POLICIES if p.name == name)
        configure.policyConfig[name].CopyFrom(
            proto.PolicyConfig(enforcementLevel=LEVEL_CODES[level], properties=properties)
        )
    analyzer.Configure(configure)

    resources = broken_resources()
    served: set[tuple[str, str, str]] = set()
    for r in resources:
        response = analyzer.Analyze(
            proto.AnalyzeRequest(
                type=r.type,
                properties=wire_struct(r.inputs),
                urn=r.urn,
                name=r.name,
                options=options(),
            )
        )
        served |= {
            (d.policyName, LEVELS[d.enforcementLevel], d.message) for d in response.diagnostics
        }
    stack = analyzer.AnalyzeStack(
        proto.AnalyzeStackRequest(
            resources=[
                proto.AnalyzerResource(
                    type=r.type,
                    properties=wire_struct({**r.inputs, **r.outputs}),
                    urn=r.urn,
                    name=r.name,
                    options=options(),
                )
                for r in resources
            ]
        )
    )
    served |= {(d.policyName, LEVELS[d.enforcementLevel], d.message) for d in stack.diagnostics}

    def as_served(v: Violation) -> tuple[str, str, str]:
        description = next(p.description for p in POLICIES if p.name == v.policy)
        return (v.policy, v.enforcement, f"{description}\n{v.message}")

    expected = {as_served(v) for v in evaluate(resources, POLICIES, settings)}
    assert served == expected
    assert len(served) >= 8  # key, 4 S3 rules, IKE, PSK, GPU taint, cost
