"""PublicCluster alone, under the mocks: EKS encrypted and logged under its own key, its
public endpoint open to the admin networks only, IRSA for the VPC CNI, admins by access
entry, and a kubeconfig and Kubernetes provider that wait for those entries."""

import json

import pulumi
import pytest

from components.public_cluster import PublicCluster, PublicClusterArgs
from infra.offline import StackEvaluation, evaluate_component

ADMIN_CIDRS = ("203.0.113.0/24",)
ADMINS = ("arn:aws:iam::123456789012:role/platform-admin",)


def _create() -> None:
    cluster = PublicCluster(
        "public",
        PublicClusterArgs(
            cluster_name="hybrid-x", kubernetes_version="1.33", region="eu-west-1",
            subnet_ids=["subnet-a", "subnet-b"], public_access_cidrs=ADMIN_CIDRS,
            admin_principals=ADMINS, deletion_protection=True,
        ),
    )  # fmt: skip
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("oidcIssuer", cluster.oidc_issuer)


@pytest.fixture(scope="module")
def eks() -> StackEvaluation:
    return evaluate_component(_create)


def test_eks_is_encrypted_logged_and_narrowly_exposed(eks: StackEvaluation) -> None:
    (cluster,) = eks.of_type("aws:eks/cluster:Cluster")
    keys = {k.outputs["arn"]: k for k in eks.of_type("aws:kms/key:Key")}
    key = keys[cluster.inputs["encryptionConfig"]["provider"]["keyArn"]]
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert key.inputs["enableKeyRotation"] is True
    assert cluster.inputs["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    (group,) = eks.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["name"] == "/aws/eks/hybrid-x/cluster"
    assert group.inputs["kmsKeyId"] in keys
    vpc_config = cluster.inputs["vpcConfig"]
    assert vpc_config["endpointPrivateAccess"] is True
    assert vpc_config["publicAccessCidrs"] == list(ADMIN_CIDRS)
    assert cluster.inputs["accessConfig"]["authenticationMode"] == "API"
    assert cluster.inputs["deletionProtection"] is True


def test_the_vpc_cni_assumes_its_role_through_the_cluster_oidc(eks: StackEvaluation) -> None:
    (cluster,) = eks.of_type("aws:eks/cluster:Cluster")
    (oidc,) = eks.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.inputs["url"] == cluster.outputs["identities"][0]["oidcs"][0]["issuer"]
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    issuer = eks.outputs["oidcIssuer"]
    assert issuer == oidc.inputs["url"].removeprefix("https://")
    addons = {a.inputs["addonName"]: a for a in eks.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"}
    roles = {r.outputs["arn"]: r for r in eks.of_type("aws:iam/role:Role")}
    role = roles[addons["vpc-cni"].inputs["serviceAccountRoleArn"]]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Federated": oidc.outputs["arn"]}
    assert trust["Condition"]["StringEquals"][f"{issuer}:sub"] == (
        "system:serviceaccount:kube-system:aws-node"
    )


def test_admins_get_access_entries_the_provider_waits_for(eks: StackEvaluation) -> None:
    entries = {r.inputs["principalArn"]: r for r in eks.of_type("aws:eks/accessEntry:AccessEntry")}
    assert sorted(entries) == sorted(ADMINS)
    associations = eks.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert {a.inputs["principalArn"] for a in associations} == set(entries)
    for association in associations:
        assert association.inputs["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
        assert association.inputs["accessScope"] == {"type": "cluster"}
    (cluster,) = eks.of_type("aws:eks/cluster:Cluster")
    # The creator keeps the entry EKS bootstraps for it; a second one for it would be refused.
    assert cluster.inputs["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is True
    (provider,) = eks.of_type("pulumi:providers:kubernetes")
    assert {a.urn for a in associations} <= set(provider.dependencies)
    assert "kubeconfig" in provider.secret_inputs


def test_the_kubeconfig_gets_its_token_from_aws_eks(eks: StackEvaluation) -> None:
    (cluster,) = eks.of_type("aws:eks/cluster:Cluster")
    kubeconfig = json.loads(eks.outputs["kubeconfig"])
    assert kubeconfig["users"][0]["user"]["exec"]["args"][:4] == [
        "eks", "get-token", "--cluster-name", cluster.outputs["name"],
    ]  # fmt: skip
    assert "kubeconfig" in eks.secret_outputs
