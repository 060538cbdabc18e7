"""AwsNetwork alone, under the mocks: zones, subnets, NAT and encrypted flow logs."""

import ipaddress

import pytest

from components.aws_network import AwsNetwork, AwsNetworkArgs
from infra.offline import StackEvaluation, evaluate_component

ZONES = ("eu-west-1a", "eu-west-1b", "eu-west-1c")
CIDR = "10.10.0.0/16"


@pytest.fixture(scope="module")
def network() -> StackEvaluation:
    return evaluate_component(
        lambda: AwsNetwork(
            "public",
            AwsNetworkArgs(
                cidr=CIDR, availability_zones=ZONES, cluster_name="hybrid-x",
                flow_log_retention_days=30,
            ),
        )
    )  # fmt: skip


def test_the_network_spans_the_zones_with_tagged_subnets(network: StackEvaluation) -> None:
    subnets = network.of_type("aws:ec2/subnet:Subnet")
    assert sorted(s.inputs["availabilityZone"] for s in subnets) == sorted(ZONES * 2)
    assert len(network.of_type("aws:ec2/natGateway:NatGateway")) == len(ZONES)
    vpc = ipaddress.IPv4Network(CIDR)
    for subnet in subnets:
        assert ipaddress.IPv4Network(subnet.inputs["cidrBlock"]).subnet_of(vpc), subnet.name
        role = "internal-elb" if "private" in subnet.name else "elb"
        assert subnet.inputs["tags"][f"kubernetes.io/role/{role}"] == "1", subnet.name
        assert subnet.inputs["tags"]["kubernetes.io/cluster/hybrid-x"] == "shared", subnet.name


def test_flow_logs_go_to_an_encrypted_group_kept_as_long_as_asked(
    network: StackEvaluation,
) -> None:
    (flow_log,) = network.of_type("aws:ec2/flowLog:FlowLog")
    groups = {g.outputs["arn"]: g for g in network.of_type("aws:cloudwatch/logGroup:LogGroup")}
    group = groups[flow_log.inputs["logDestination"]]
    assert flow_log.inputs["trafficType"] == "ALL"
    assert group.inputs["retentionInDays"] == 30
    keys = {k.outputs["arn"]: k for k in network.of_type("aws:kms/key:Key")}
    assert keys[group.inputs["kmsKeyId"]].inputs["enableKeyRotation"] is True


def test_model_downloads_skip_the_nat_through_an_s3_gateway_endpoint(
    network: StackEvaluation,
) -> None:
    (endpoint,) = network.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["serviceName"] == f"com.amazonaws.{network.config.public.region}.s3"
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    private_tables = {
        r.id for r in network.of_type("aws:ec2/routeTable:RouteTable") if "private" in r.name
    }
    assert len(private_tables) == len(ZONES)
    assert set(endpoint.inputs["routeTableIds"]) == private_tables
