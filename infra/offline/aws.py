"""Fabricated outputs of the AWS resources the stack creates."""

import base64
import ipaddress
from typing import Any

from infra.offline.registry import FabricatingMocks, Fabricator, autoname, fabricates

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

    def fabricate(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
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
    fabricates(_token)(_ec2_for(_token))


@fabricates("aws:ec2/eip:Eip")
def _eip(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    id_ = f"eipalloc-{mocks.hex('eip', name)}"
    return id_, {
        "allocationId": id_,
        "publicIp": mocks.ip("3.208.0.0/12", "eip", name),
        "domain": "vpc",
    }


@fabricates("aws:ec2/vpnConnection:VpnConnection")
def _vpn_connection(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
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


@fabricates(
    "aws:ec2transitgateway/routeTableAssociation:RouteTableAssociation",
    "aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation",
)
def _tgw_route_table_link(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return f"{inputs['transitGatewayRouteTableId']}_{inputs['transitGatewayAttachmentId']}", {}


@fabricates("aws:kms/key:Key")
def _kms_key(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    digest = mocks.digest("kms", name)
    key_id = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    return key_id, {"keyId": key_id, "arn": mocks.aws_arn("kms", f"key/{key_id}")}


@fabricates("aws:kms/alias:Alias")
def _kms_alias(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    alias = autoname(mocks, name, inputs, "name")
    target = mocks.by_id.get(inputs.get("targetKeyId", ""), {})
    return alias, {
        "arn": mocks.aws_arn("kms", alias),
        "targetKeyArn": target.get("arn", inputs.get("targetKeyId")),
    }


@fabricates("aws:cloudwatch/logGroup:LogGroup")
def _log_group(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    group = autoname(mocks, name, inputs, "name")
    return group, {"name": group, "arn": mocks.aws_arn("logs", f"log-group:{group}")}


@fabricates("aws:iam/role:Role")
def _iam_role(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    role = autoname(mocks, name, inputs, "name")
    return role, {
        "name": role,
        "arn": mocks.aws_arn("iam", f"role/{role}", regional=False),
        "uniqueId": "AROA" + mocks.hex("role", name, length=17).upper(),
    }


@fabricates("aws:iam/rolePolicy:RolePolicy")
def _iam_role_policy(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    policy = autoname(mocks, name, inputs, "name")
    return f"{inputs.get('role')}:{policy}", {"name": policy}


@fabricates("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def _iam_attachment(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return f"{inputs.get('role')}-{mocks.hex('attach', name, length=8)}", {}


@fabricates("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
def _oidc_provider(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    host = str(inputs["url"]).removeprefix("https://")
    arn = mocks.aws_arn("iam", f"oidc-provider/{host}", regional=False)
    return arn, {"arn": arn, "thumbprintLists": inputs.get("thumbprintLists") or []}


@fabricates("aws:eks/cluster:Cluster")
def _eks_cluster(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    cluster = autoname(mocks, name, inputs, "name")
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


@fabricates("aws:eks/addon:Addon")
def _eks_addon(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    addon = inputs["addonName"]
    return f"{inputs['clusterName']}:{addon}", {
        "arn": mocks.aws_arn("eks", f"addon/{inputs['clusterName']}/{addon}/{mocks.hex(name)}"),
        "addonVersion": inputs.get("addonVersion") or "v1.0.0-eksbuild.1",
    }


@fabricates("aws:eks/nodeGroup:NodeGroup")
def _eks_node_group(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    group = autoname(mocks, name, inputs, "nodeGroupName")
    cluster = inputs["clusterName"]
    return f"{cluster}:{group}", {
        "nodeGroupName": group,
        "arn": mocks.aws_arn("eks", f"nodegroup/{cluster}/{group}/{mocks.hex('ng', name)}"),
        "status": "ACTIVE",
        "resources": [{"autoscalingGroups": [{"name": f"eks-{group}-{mocks.hex('asg', name)}"}]}],
    }


@fabricates("aws:autoscaling/tag:Tag")
def _autoscaling_tag(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    """The provider's ID: the Auto Scaling group and the tag key."""
    return f"{inputs['autoscalingGroupName']},{inputs['tag']['key']}", {}


@fabricates(
    "aws:eks/accessEntry:AccessEntry", "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
)
def _eks_access(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    cluster = inputs["clusterName"]
    arn = mocks.aws_arn("eks", f"access-entry/{cluster}/{mocks.hex(name)}")
    return f"{cluster}#{inputs['principalArn']}", {"accessEntryArn": arn}


@fabricates("aws:acm/certificate:Certificate")
def _acm_certificate(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    arn = mocks.aws_arn("acm", f"certificate/{mocks.hex('acm', name, length=8)}")
    return arn, {"arn": arn, "status": "ISSUED", "type": "IMPORTED"}


@fabricates("aws:s3/bucketObjectv2:BucketObjectv2")
def _s3_object(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    key = inputs["key"]
    return key, {
        "versionId": mocks.hex("version", key, length=32),
        "etag": mocks.hex("etag", key, length=32),
    }


@fabricates("aws:s3/bucket:Bucket")
def _s3_bucket(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    bucket = inputs.get("bucket") or f"{name}-{mocks.hex('bucket', name, length=7)}"
    return bucket, {
        "bucket": bucket,
        "arn": f"arn:aws:s3:::{bucket}",
        "bucketDomainName": f"{bucket}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{bucket}.s3.{mocks.aws_region}.amazonaws.com",
        "region": mocks.aws_region,
        "hostedZoneId": "Z3AQBSTGFYJSTF",
    }


@fabricates(
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketLogging:BucketLogging",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
)
def _s3_bucket_setting(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return str(inputs["bucket"]), {}
