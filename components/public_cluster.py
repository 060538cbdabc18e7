"""The public site's EKS cluster, from plain ``pulumi_aws.eks`` resources.

Secrets are envelope-encrypted with a rotating CMK; the API, audit and authenticator
logs go to a log group under the same key; the public endpoint admits only the admin
networks (nodes and the VPN side use the private endpoint); access is managed with
EKS access entries, pods get AWS credentials through IRSA, and a small on-demand
system node group runs CoreDNS and the other system pods (GPU nodes are tainted).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws_policies import (
    irsa_trust_policy,
    managed_policy_arn,
    service_trust_policy,
)
from components.encrypted_log_group import encrypted_log_group
from components.kubeconfig import cluster_provider, exec_kubeconfig
from components.values import required

CONTROL_PLANE_LOGS = ("api", "audit", "authenticator")
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryReadOnly",
)


@dataclass(frozen=True)
class PublicClusterArgs:
    cluster_name: str
    """The EKS name; fixed (not auto-named) because subnet tags and the log group use it."""
    kubernetes_version: str
    region: str
    """The provider's region, written into the kubeconfig's ``aws eks get-token`` call."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets for the control plane's network interfaces and every node group."""
    public_access_cidrs: Sequence[str]
    """The only networks that may reach the public API endpoint (admins, CI runners)."""
    admin_principals: Sequence[str] = ()
    """IAM role/user ARNs that get cluster-admin access entries. The creator gets one from
    EKS itself (bootstrap), so it must not be listed: EKS refuses a second entry for it."""
    deletion_protection: bool = True
    log_retention_days: int = 90
    system_instance_type: str = "m6i.large"
    system_node_count: int = 2
    """Nodes for system pods (CoreDNS, the VPC CNI's controllers); two for availability."""


class PublicCluster(pulumi.ComponentResource):
    name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    """The OIDC issuer without ``https://``, as IAM condition keys use it."""
    security_group_id: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    kms_key_arn: pulumi.Output[str]
    core_addons: list[aws.eks.Addon]
    """Add-ons the nodes need before they can become ready (CNI, kube-proxy)."""

    def __init__(
        self, name: str, args: PublicClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hybrid:public_cluster:PublicCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        protected = pulumi.ResourceOptions(parent=self, protect=args.deletion_protection)
        log_group_name = f"/aws/eks/{args.cluster_name}/cluster"

        # EKS would create this group itself, unencrypted and kept forever; creating it
        # first sets the key and the retention.
        logs = encrypted_log_group(
            key_name=f"{name}-secrets-key",
            group_name=f"{name}-control-plane-logs",
            log_group_name=log_group_name,
            description=f"Envelope encryption of {args.cluster_name}'s Kubernetes secrets and logs",
            retention_days=args.log_retention_days,
            parent=self,
            key_opts=protected,
        )
        key, log_group = logs.key, logs.group
        cluster_role = aws.iam.Role(
            f"{name}-cluster",
            assume_role_policy=service_trust_policy("eks.amazonaws.com"),
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=cluster_role.name,
            policy_arn=managed_policy_arn(self, "AmazonEKSClusterPolicy"),
            opts=child,
        )
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config={
                "subnet_ids": list(args.subnet_ids),
                "endpoint_private_access": True,
                "endpoint_public_access": True,
                "public_access_cidrs": list(args.public_access_cidrs),
            },
            encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            access_config={
                "authentication_mode": "API",
                "bootstrap_cluster_creator_admin_permissions": True,
            },
            # The CNI and kube-proxy come from managed add-ons below, not from EKS's
            # unmanaged defaults, so their versions are pinned and upgraded by EKS.
            bootstrap_self_managed_addons=False,
            deletion_protection=args.deletion_protection,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.deletion_protection,
                depends_on=[log_group, cluster_policy],
            ),
        )

        issuer_url = cluster.identities.apply(
            lambda ids: ids[0].oidcs[0].issuer if ids[0].oidcs else None
        ).apply(required("EKS OIDC issuer"))
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer_url,
            client_id_lists=["sts.amazonaws.com"],
            opts=child,
        )
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer = issuer_url.apply(lambda url: url.removeprefix("https://"))

        # The VPC CNI gets its ENI permissions through IRSA, not from the node role, so
        # ordinary pods on a node cannot borrow them.
        cni_role = aws.iam.Role(
            f"{name}-vpc-cni",
            assume_role_policy=irsa_trust_policy(
                self.oidc_provider_arn, self.oidc_issuer, "kube-system", "aws-node"
            ),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-vpc-cni",
            role=cni_role.name,
            policy_arn=managed_policy_arn(self, "AmazonEKS_CNI_Policy"),
            opts=child,
        )
        self.core_addons = [
            # The CNI enforces NetworkPolicy only when asked to: without this, every policy
            # (Triton's default deny included) is accepted and silently ignored.
            self._addon(
                name,
                cluster,
                "vpc-cni",
                cni_role.arn,
                configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
            ),
            self._addon(name, cluster, "kube-proxy"),
            self._addon(name, cluster, "eks-pod-identity-agent"),
        ]

        node_role = aws.iam.Role(
            f"{name}-nodes",
            assume_role_policy=service_trust_policy("ec2.amazonaws.com"),
            opts=child,
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-nodes-{policy}",
                role=node_role.name,
                policy_arn=managed_policy_arn(self, policy),
                opts=child,
            )
            for policy in NODE_POLICIES
        ]
        self.node_role_arn = node_role.arn
        self.subnet_ids = args.subnet_ids
        system_nodes = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=list(args.subnet_ids),
            ami_type="AL2023_x86_64_STANDARD",
            capacity_type="ON_DEMAND",
            instance_types=[args.system_instance_type],
            scaling_config={
                "min_size": args.system_node_count,
                "max_size": args.system_node_count * 2,
                "desired_size": args.system_node_count,
            },
            labels={"hybrid.dev/pool": "system"},
            launch_template=eks_launch_template(f"{name}-system", 50, self),
            update_config={"max_unavailable": 1},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*self.core_addons, *node_policies],
                # The cluster autoscaler owns the current size once the group exists.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
        self._addon(name, cluster, "coredns", depends_on=[system_nodes])
        admins = [self._cluster_admin(name, cluster, arn) for arn in args.admin_principals]

        self.name = cluster.name
        self.kms_key_arn = key.arn
        self.security_group_id = cluster.vpc_config.apply(
            lambda vpc: vpc.cluster_security_group_id
        ).apply(required("EKS cluster security group"))
        self.kubeconfig = pulumi.Output.secret(
            eks_kubeconfig(
                cluster.name,
                cluster.endpoint,
                cluster.certificate_authority.apply(lambda ca: ca.data).apply(
                    required("EKS certificate authority")
                ),
                args.region,
            )
        )
        self.provider = cluster_provider(name, self.kubeconfig, self, [system_nodes, *admins])
        self.register_outputs(
            {
                "name": self.name,
                "kubeconfig": self.kubeconfig,
                "oidcProviderArn": self.oidc_provider_arn,
                "oidcIssuer": self.oidc_issuer,
                "securityGroupId": self.security_group_id,
                "nodeRoleArn": self.node_role_arn,
            }
        )

    def _cluster_admin(
        self, name: str, cluster: aws.eks.Cluster, principal_arn: str
    ) -> aws.eks.AccessPolicyAssociation:
        """An access entry with the cluster-admin policy: without one, with authentication
        mode API, only the creator can reach the API, and the cluster is lost with it."""
        role = principal_name(principal_arn)
        entry = aws.eks.AccessEntry(
            f"{name}-admin-{role}",
            cluster_name=cluster.name,
            principal_arn=principal_arn,
            type="STANDARD",
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.eks.AccessPolicyAssociation(
            f"{name}-admin-{role}",
            cluster_name=cluster.name,
            principal_arn=entry.principal_arn,
            policy_arn=CLUSTER_ADMIN_POLICY,
            access_scope={"type": "cluster"},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _addon(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        addon: str,
        role_arn: pulumi.Input[str] | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
        configuration_values: str | None = None,
    ) -> aws.eks.Addon:
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=cluster.name,
            addon_name=addon,
            service_account_role_arn=role_arn,
            configuration_values=configuration_values,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )


def principal_name(principal_arn: str) -> str:
    """``hybrid-ci-deploy`` for ``arn:aws:iam::123456789012:role/ops/hybrid-ci-deploy``."""
    return principal_arn.rsplit("/", 1)[-1]


def eks_launch_template(
    name: str, disk_gib: int, parent: pulumi.Resource
) -> aws.eks.NodeGroupLaunchTemplateArgsDict:
    """A launch template for managed nodes: IMDSv2 only, hop limit 1 (pods cannot reach the
    node's instance metadata and its role), and an encrypted gp3 root volume."""
    template = aws.ec2.LaunchTemplate(
        f"{name}-nodes",
        metadata_options={
            "http_endpoint": "enabled",
            "http_tokens": "required",
            "http_put_response_hop_limit": 1,
        },
        block_device_mappings=[
            {
                "device_name": "/dev/xvda",
                "ebs": {
                    "volume_size": disk_gib,
                    "volume_type": "gp3",
                    "encrypted": "true",
                    "delete_on_termination": "true",
                },
            }
        ],
        update_default_version=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return {"id": template.id, "version": template.latest_version.apply(str)}


def eks_kubeconfig(
    cluster_name: pulumi.Input[str],
    endpoint: pulumi.Input[str],
    ca_data: pulumi.Input[str],
    region: str,
) -> pulumi.Output[str]:
    """A kubeconfig that authenticates with ``aws eks get-token`` (no static credentials)."""
    get_token = ["eks", "get-token", "--cluster-name", cluster_name, "--region", region]
    return exec_kubeconfig(
        cluster_name,
        {"server": endpoint, "certificate-authority-data": ca_data},
        "aws",
        {"args": [*get_token, "--output", "json"]},
    )
