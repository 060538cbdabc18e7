"""The public site's VPC: private subnets for EKS nodes, public subnets for NAT and load
balancers, one NAT gateway per zone, and flow logs to a KMS-encrypted log group."""

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws_policies import aws_account, service_trust_policy
from components.encrypted_log_group import encrypted_log_group


@dataclass(frozen=True)
class AwsNetworkArgs:
    cidr: str
    """The VPC's IPv4 range (/16 to /20)."""
    availability_zones: Sequence[str]
    """One private and one public subnet per zone; NAT is per zone so a zone outage stays local."""
    cluster_name: str
    """EKS cluster that will use the subnets (tags its load balancers look up)."""
    flow_log_retention_days: int = 90
    """Days CloudWatch keeps the flow logs; must be a CloudWatch retention period."""


class AwsNetwork(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    cidr: str
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    private_route_table_ids: list[pulumi.Output[str]]
    flow_log_group_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: AwsNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hybrid:aws_network:AwsNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        private_cidrs, public_cidrs = split_vpc(args.cidr, len(args.availability_zones))
        cluster_tag = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        # The default security group admits all traffic between its members; nothing
        # should rely on it, so it is emptied (CIS AWS 5.4).
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[], opts=child
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_table = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, tags={"Name": f"{name}-public"}, opts=child
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_table.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child,
        )

        self.private_subnet_ids, self.public_subnet_ids, self.private_route_table_ids = [], [], []
        for zone, private_cidr, public_cidr in zip(
            args.availability_zones, private_cidrs, public_cidrs, strict=True
        ):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=public_cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{zone}", "kubernetes.io/role/elb": "1"} | cluster_tag,
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}", subnet_id=public.id, route_table_id=public_table.id,
                opts=child,
            )  # fmt: skip
            nat_ip = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", opts=child)
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{zone}",
                allocation_id=nat_ip.allocation_id,
                subnet_id=public.id,
                tags={"Name": f"{name}-nat-{zone}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=private_cidr,
                availability_zone=zone,
                tags={"Name": f"{name}-private-{zone}", "kubernetes.io/role/internal-elb": "1"}
                | cluster_tag,
                opts=child,
            )
            private_table = aws.ec2.RouteTable(
                f"{name}-private-rt-{zone}",
                vpc_id=vpc.id,
                tags={"Name": f"{name}-private-{zone}"},
                opts=child,
            )
            aws.ec2.Route(
                f"{name}-private-default-{zone}",
                route_table_id=private_table.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat.id,
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=private.id, route_table_id=private_table.id,
                opts=child,
            )  # fmt: skip
            self.private_subnet_ids.append(private.id)
            self.public_subnet_ids.append(public.id)
            self.private_route_table_ids.append(private_table.id)

        # Model downloads from S3 go through a gateway endpoint, not the NAT gateways
        # (which charge per GB); the endpoint itself is free.
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=aws_account(self).apply(lambda a: f"com.amazonaws.{a.region}.s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=self.private_route_table_ids,
            tags={"Name": f"{name}-s3"},
            opts=child,
        )
        log_group = self._flow_logs(name, vpc, args, child)
        self.vpc_id = vpc.id
        self.cidr = args.cidr
        self.flow_log_group_name = log_group.name
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "publicSubnetIds": self.public_subnet_ids,
                "flowLogGroupName": self.flow_log_group_name,
            }
        )

    def _flow_logs(
        self, name: str, vpc: aws.ec2.Vpc, args: AwsNetworkArgs, child: pulumi.ResourceOptions
    ) -> aws.cloudwatch.LogGroup:
        """All traffic of the VPC to a log group under a rotating CMK of its own."""
        group_name = f"/hybrid/{name}/vpc-flow-logs"
        log_group = encrypted_log_group(
            key_name=f"{name}-flow-logs-key",
            group_name=f"{name}-flow-logs",
            log_group_name=group_name,
            description=f"Encrypts the VPC flow logs of {name}",
            retention_days=args.flow_log_retention_days,
            parent=self,
            key_opts=child,
        ).group
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=service_trust_policy("vpc-flow-logs.amazonaws.com"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogStreams",
                            ],
                            "Resource": [log_group.arn, pulumi.Output.concat(log_group.arn, ":*")],
                        }
                    ],
                }
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            opts=child,
        )
        return log_group


def split_vpc(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Private and public subnet ranges, one each per zone.

    Private subnets (EKS nodes and pods) take equal large blocks; the public subnets
    (NAT, load balancers) share the VPC's last block, split eight ways.
    """
    vpc = ipaddress.IPv4Network(cidr)
    bits = max(2, zones.bit_length())
    blocks = list(vpc.subnets(prefixlen_diff=bits))
    if zones > min(len(blocks) - 1, 8):
        raise ValueError(f"{cidr} cannot hold subnets for {zones} zones")
    public = list(blocks[-1].subnets(prefixlen_diff=3))
    return [str(b) for b in blocks[:zones]], [str(b) for b in public[:zones]]
