"""The whole program for dev, staging and prod under mocks: follow the wiring from one
resource to the next, the way the clouds would."""

import ipaddress
import json
import re
from collections import Counter

from components.private_cluster import is_internal
from infra.offline import MockedResource, StackEvaluation

VPN_TUNNEL = "gcp:compute/vPNTunnel:VPNTunnel"
VPN_CONNECTION = "aws:ec2/vpnConnection:VpnConnection"
PSK = re.compile(r"^[1-9A-Za-z._][0-9A-Za-z._]{7,63}$")


def only(resources: list[MockedResource], what: str) -> MockedResource:
    assert len(resources) == 1, f"expected one {what}, found {[r.name for r in resources]}"
    return resources[0]


def child(ev: StackEvaluation, parent: MockedResource, type_: str) -> list[MockedResource]:
    return [r for r in ev.children_of(parent) if r.type == type_]


def by_name(ev: StackEvaluation, type_: str) -> dict[str, MockedResource]:
    return {r.name: r for r in ev.of_type(type_)}


# --- the graph as a whole ----------------------------------------------------------------


def test_urns_are_unique(stack_evaluation: StackEvaluation) -> None:
    duplicates = [u for u, n in Counter(r.urn for r in stack_evaluation.resources).items() if n > 1]
    assert not duplicates, f"{stack_evaluation.stack}: URNs registered twice: {duplicates}"


def test_every_cloud_resource_uses_an_explicit_provider(stack_evaluation: StackEvaluation) -> None:
    providers = {r.urn for r in stack_evaluation.resources if r.type.startswith("pulumi:providers")}
    for resource in stack_evaluation.resources:
        if resource.custom and not resource.type.startswith("pulumi:providers:"):
            package = resource.type.split(":", 1)[0]
            if package in ("random", "tls"):
                continue  # local-only packages: the default provider is the right one
            assert resource.provider in providers, (
                f"{resource.name} ({resource.type}) uses the default provider; "
                "pass the stack's provider through the component's opts"
            )


def test_every_cloud_resource_belongs_to_a_component(stack_evaluation: StackEvaluation) -> None:
    components = {r.urn for r in stack_evaluation.resources if not r.custom}
    loose = [
        r.name
        for r in stack_evaluation.resources
        if r.custom and not r.type.startswith("pulumi:providers:") and r.parent not in components
    ]
    assert not loose, f"resources created outside any component: {loose}"


def test_the_mocks_fabricate_outputs_for_every_type(stack_evaluation: StackEvaluation) -> None:
    from infra.offline import fabricated_types

    cloud = [r for r in stack_evaluation.resources if not r.type.startswith("kubernetes:")]
    missing = {r.type for r in cloud if r.custom} - fabricated_types()
    assert not missing, f"infra/offline has no fabricator for {sorted(missing)}"


def test_no_deprecation_warnings(stack_evaluation: StackEvaluation) -> None:
    assert not [w for w in stack_evaluation.warnings if "deprecat" in w.lower()]


# --- HA VPN --------------------------------------------------------------------------------


def _vpn(ev: StackEvaluation) -> tuple[list[MockedResource], list[MockedResource]]:
    connections = sorted(ev.of_type(VPN_CONNECTION), key=lambda r: r.name)
    tunnels = sorted(ev.of_type(VPN_TUNNEL), key=lambda r: r.name)
    assert len(connections) == 2 and len(tunnels) == 4
    return connections, tunnels


def test_each_gcp_tunnel_uses_the_right_interfaces(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    connections, tunnels = _vpn(ev)
    ha_gateway = only(ev.of_type("gcp:compute/haVpnGateway:HaVpnGateway"), "HA VPN gateway")
    external = only(ev.of_type("gcp:compute/externalVpnGateway:ExternalVpnGateway"), "peer GW")
    assert external.inputs["redundancyType"] == "FOUR_IPS_REDUNDANCY"
    external_ips = {i["id"]: i["ipAddress"] for i in external.inputs["interfaces"]}
    ha_ips = {i["id"]: i["ipAddress"] for i in ha_gateway.outputs["vpnInterfaces"]}
    customer_gateways = {r.id: r for r in ev.of_type("aws:ec2/customerGateway:CustomerGateway")}

    for k, tunnel in enumerate(tunnels):
        connection, aws_tunnel = connections[k // 2], k % 2 + 1
        assert tunnel.inputs["vpnGateway"] == ha_gateway.id
        assert tunnel.inputs["vpnGatewayInterface"] == k // 2, tunnel.name
        assert tunnel.inputs["peerExternalGateway"] == external.id
        assert tunnel.inputs["peerExternalGatewayInterface"] == k, tunnel.name
        # The external interface k is exactly AWS's outside address of that tunnel ...
        assert external_ips[k] == connection.outputs[f"tunnel{aws_tunnel}Address"]
        # ... and AWS dials back to the HA interface the GCP tunnel leaves from.
        customer_gateway = customer_gateways[connection.inputs["customerGatewayId"]]
        assert customer_gateway.inputs["ipAddress"] == ha_ips[k // 2], tunnel.name


def test_each_bgp_peer_matches_the_aws_inside_addresses(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    config = ev.config
    connections, tunnels = _vpn(ev)
    interfaces = sorted(
        ev.of_type("gcp:compute/routerInterface:RouterInterface"), key=lambda r: r.name
    )
    peers = sorted(ev.of_type("gcp:compute/routerPeer:RouterPeer"), key=lambda r: r.name)
    assert len(interfaces) == len(peers) == 4

    for k in range(4):
        connection, t = connections[k // 2], k % 2 + 1
        inside = ipaddress.IPv4Network(config.vpn_inside_cidrs[k])
        assert connection.inputs[f"tunnel{t}InsideCidr"] == str(inside)
        aws_side = connection.outputs[f"tunnel{t}VgwInsideAddress"]
        gcp_side = connection.outputs[f"tunnel{t}CgwInsideAddress"]
        assert ipaddress.IPv4Address(aws_side) in inside

        assert interfaces[k].inputs["vpnTunnel"] == tunnels[k].outputs["name"]
        assert interfaces[k].inputs["ipRange"] == f"{gcp_side}/30"
        assert peers[k].inputs["interface"] == interfaces[k].outputs["name"]
        assert peers[k].inputs["peerIpAddress"] == aws_side, peers[k].name
        assert peers[k].inputs["ipAddress"] == gcp_side
        assert peers[k].inputs["peerAsn"] == config.public.asn


def test_asns_and_route_propagation(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    config = ev.config
    tgw = only(ev.of_type("aws:ec2transitgateway/transitGateway:TransitGateway"), "TGW")
    assert tgw.inputs["amazonSideAsn"] == config.public.asn
    assert tgw.inputs["vpnEcmpSupport"] == "enable"
    routers = [r for r in ev.of_type("gcp:compute/router:Router") if "bgp" in r.inputs]
    assert only(routers, "VPN router").inputs["bgp"]["asn"] == config.private.asn
    assert only(routers, "VPN router").inputs["bgp"]["advertisedIpRanges"] == [
        {"range": config.private.control_plane_cidr}
    ]
    for gateway in ev.of_type("aws:ec2/customerGateway:CustomerGateway"):
        assert gateway.inputs["bgpAsn"] == str(config.private.asn)

    # Every attachment (the VPC and both VPN connections) propagates into the TGW table.
    table = only(ev.of_type("aws:ec2transitgateway/routeTable:RouteTable"), "TGW route table")
    attachments = {r.id for r in ev.of_type("aws:ec2transitgateway/vpcAttachment:VpcAttachment")}
    attachments |= {c.outputs["transitGatewayAttachmentId"] for c in ev.of_type(VPN_CONNECTION)}
    for kind in (
        "routeTablePropagation:RouteTablePropagation",
        "routeTableAssociation:RouteTableAssociation",
    ):
        links = ev.of_type(f"aws:ec2transitgateway/{kind}")
        assert {r.inputs["transitGatewayAttachmentId"] for r in links} == attachments
        assert {r.inputs["transitGatewayRouteTableId"] for r in links} == {table.id}

    # Every private route table sends every GCP range to the TGW.
    gcp_ranges = {
        config.private.subnet_cidr,
        config.private.pods_cidr,
        config.private.services_cidr,
        config.private.control_plane_cidr,
    }
    private_tables = [
        r.id for r in ev.of_type("aws:ec2/routeTable:RouteTable") if "private" in r.name
    ]
    assert len(private_tables) == len(config.public.availability_zones)
    for table_id in private_tables:
        to_tgw = {
            r.inputs["destinationCidrBlock"]
            for r in ev.of_type("aws:ec2/route:Route")
            if r.inputs["routeTableId"] == table_id and r.inputs.get("transitGatewayId") == tgw.id
        }
        assert to_tgw == gcp_ranges


def test_one_ike_v2_algorithm_set_on_both_ends(stack_evaluation: StackEvaluation) -> None:
    connections, tunnels = _vpn(stack_evaluation)
    for tunnel in tunnels:
        assert tunnel.inputs["ikeVersion"] == 2
        for phase in tunnel.inputs["cipherSuite"].values():
            assert all(len(algorithms) == 1 for algorithms in phase.values()), tunnel.name
    for connection in connections:
        for t in (1, 2):
            assert connection.inputs[f"tunnel{t}IkeVersions"] == ["ikev2"]
            options = [k for k in connection.inputs if re.match(rf"tunnel{t}Phase\d\w+", k)]
            assert len(options) == 6
            assert all(len(connection.inputs[k]) == 1 for k in options), connection.name


def test_pre_shared_keys_are_shared_valid_and_secret(stack_evaluation: StackEvaluation) -> None:
    connections, tunnels = _vpn(stack_evaluation)
    for k, tunnel in enumerate(tunnels):
        connection, t = connections[k // 2], k % 2 + 1
        key = tunnel.inputs["sharedSecret"]
        assert key == connection.inputs[f"tunnel{t}PresharedKey"]
        assert PSK.match(key), f"{tunnel.name}: the key breaks AWS's rules"
        assert "sharedSecret" in tunnel.secret_inputs
        assert f"tunnel{t}PresharedKey" in connection.secret_inputs
    assert len({t.inputs["sharedSecret"] for t in tunnels}) == 4


def test_tunnel_identities_are_exported(stack_evaluation: StackEvaluation) -> None:
    exported = stack_evaluation.outputs["vpnTunnels"]
    tunnels = sorted(stack_evaluation.of_type(VPN_TUNNEL), key=lambda r: r.name)
    assert [t["gcpTunnel"] for t in exported] == [t.outputs["selfLink"] for t in tunnels]
    assert [(t["haInterface"], t["awsTunnel"]) for t in exported] == [
        (0, 1),
        (0, 2),
        (1, 1),
        (1, 2),
    ]
    assert [t["insideCidr"] for t in exported] == list(stack_evaluation.config.vpn_inside_cidrs)


# --- networks --------------------------------------------------------------------------------


# --- clusters ------------------------------------------------------------------------------


def test_eks_is_encrypted_logged_and_narrowly_exposed(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    cluster = only(ev.of_type("aws:eks/cluster:Cluster"), "EKS cluster")
    component = ev.by_urn(cluster.parent or "")
    key = only(child(ev, component, "aws:kms/key:Key"), "EKS key")
    assert cluster.inputs["encryptionConfig"] == {
        "provider": {"keyArn": key.outputs["arn"]},
        "resources": ["secrets"],
    }
    assert key.inputs["enableKeyRotation"] is True
    assert cluster.inputs["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    vpc_config = cluster.inputs["vpcConfig"]
    assert vpc_config["endpointPrivateAccess"] is True
    assert vpc_config["publicAccessCidrs"] == list(ev.config.admin_cidrs)
    assert cluster.inputs["accessConfig"]["authenticationMode"] == "API"
    assert cluster.inputs["deletionProtection"] is ev.config.deletion_protection

    oidc = only(ev.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider"), "OIDC")
    assert oidc.inputs["url"] == cluster.outputs["identities"][0]["oidcs"][0]["issuer"]
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert ev.outputs["publicOidcIssuer"] == oidc.inputs["url"].removeprefix("https://")
    addons = {a.inputs["addonName"] for a in ev.of_type("aws:eks/addon:Addon")}
    assert addons == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"}
    cni = next(a for a in ev.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni")
    role = next(
        r
        for r in ev.of_type("aws:iam/role:Role")
        if r.outputs["arn"] == cni.inputs["serviceAccountRoleArn"]
    )
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Federated": oidc.outputs["arn"]}
    assert trust["Condition"]["StringEquals"][f"{ev.outputs['publicOidcIssuer']}:sub"] == (
        "system:serviceaccount:kube-system:aws-node"
    )


def test_gke_is_private_encrypted_and_authorised_narrowly(
    stack_evaluation: StackEvaluation,
) -> None:
    ev = stack_evaluation
    cluster = only(ev.of_type("gcp:container/cluster:Cluster"), "GKE cluster")
    networks = [
        b["cidrBlock"] for b in cluster.inputs["masterAuthorizedNetworksConfig"]["cidrBlocks"]
    ]
    assert ev.config.public.vpc_cidr in networks
    assert all(is_internal(cidr) for cidr in networks)
    assert "0.0.0.0/0" not in networks
    assert cluster.inputs["masterAuthorizedNetworksConfig"]["gcpPublicCidrsAccessEnabled"] is False

    private = cluster.inputs["privateClusterConfig"]
    assert private["enablePrivateNodes"] is True
    assert private["enablePrivateEndpoint"] is True
    assert private["masterIpv4CidrBlock"] == ev.config.private.control_plane_cidr
    assert private["masterGlobalAccessConfig"] == {"enabled": True}
    assert cluster.inputs["controlPlaneEndpointsConfig"]["dnsEndpointConfig"][
        "allowExternalTraffic"
    ]
    assert cluster.inputs["workloadIdentityConfig"] == {
        "workloadPool": f"{ev.config.private.project}.svc.id.goog"
    }
    assert cluster.inputs["enableShieldedNodes"] is True
    assert cluster.inputs["datapathProvider"] == "ADVANCED_DATAPATH"
    assert cluster.inputs["releaseChannel"] == {"channel": ev.config.private.release_channel}
    assert cluster.inputs["removeDefaultNodePool"] is True
    assert cluster.inputs["deletionProtection"] is ev.config.deletion_protection

    # Secrets encryption: the cluster's own key, granted to the GKE service agent first.
    component = ev.by_urn(cluster.parent or "")
    key = only(child(ev, component, "gcp:kms/cryptoKey:CryptoKey"), "GKE key")
    grant = only(child(ev, component, "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"), "grant")
    assert cluster.inputs["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": key.id}
    assert grant.inputs["cryptoKeyId"] == key.id
    assert re.fullmatch(
        r"serviceAccount:service-\d+@container-engine-robot\.iam\.gserviceaccount\.com",
        grant.inputs["member"],
    )
    assert grant.urn in cluster.dependencies
    assert key.inputs["rotationPeriod"] == "7776000s"

    # The kubeconfig talks to the DNS endpoint (IAM-authenticated), never to an IP.
    server = json.loads(ev.outputs["privateKubeconfig"])["clusters"][0]["cluster"]["server"]
    assert (
        server
        == "https://"
        + cluster.outputs["controlPlaneEndpointsConfig"]["dnsEndpointConfig"]["endpoint"]
    )
    assert server.endswith(".gke.goog")
    peering = only(
        ev.of_type("gcp:compute/networkPeeringRoutesConfig:NetworkPeeringRoutesConfig"), "peering"
    )
    assert peering.inputs["peering"] == cluster.outputs["privateClusterConfig"]["peeringName"]
    assert peering.inputs["exportCustomRoutes"] is True


def test_gpu_pools_are_tainted_labelled_and_sized(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
    groups = [
        g for g in ev.of_type("aws:eks/nodeGroup:NodeGroup") if "NVIDIA" in g.inputs["amiType"]
    ]
    assert len(groups) == len(ev.config.public.gpu_pools)
    for group in groups:
        pool = next(p for p in ev.config.public.gpu_pools if group.name == f"public-{p.name}-nodes")
        assert group.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
        assert group.inputs["taints"] == [taint], group.name
        assert group.inputs["labels"]["hybrid.dev/accelerator"] == pool.gpu.name
        assert (
            group.inputs["labels"]["hybrid.dev/compute-capability"] == pool.gpu.compute_capability
        )
        assert group.inputs["capacityType"] == ("SPOT" if pool.spot else "ON_DEMAND")
        assert group.inputs["scalingConfig"] == {
            "minSize": pool.min_size, "maxSize": pool.max_size, "desiredSize": pool.desired_size,
        }  # fmt: skip

    gpu_pools = [
        p
        for p in ev.of_type("gcp:container/nodePool:NodePool")
        if p.inputs["nodeConfig"]["guestAccelerators"]
    ]
    assert len(gpu_pools) == len(ev.config.private.gpu_pools)
    for node_pool in gpu_pools:
        pool = next(
            p for p in ev.config.private.gpu_pools if node_pool.name == f"private-{p.name}-nodes"
        )
        node = node_pool.inputs["nodeConfig"]
        assert node["taints"] == [taint], node_pool.name
        assert node["guestAccelerators"] == [
            {"type": pool.gpu.gcp_accelerator, "count": pool.gpus_per_node,
             "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}
        ]  # fmt: skip
        assert node["labels"]["hybrid.dev/compute-capability"] == pool.gpu.compute_capability
        assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
        assert node["shieldedInstanceConfig"] == {
            "enableSecureBoot": True,
            "enableIntegrityMonitoring": True,
        }
        assert node["spot"] is pool.spot
        assert node_pool.inputs["autoscaling"]["totalMaxNodeCount"] == pool.max_size


# --- buckets -----------------------------------------------------------------------------


def test_each_bucket_is_encrypted_with_its_own_key(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    s3_keys = []
    for component in ev.of_type("hybrid:encrypted_bucket:EncryptedBucket"):
        children = ev.children_of(component)
        if any(c.type == "aws:s3/bucket:Bucket" for c in children):
            key = only(child(ev, component, "aws:kms/key:Key"), "bucket key")
            bucket = by_name(ev, "aws:s3/bucket:Bucket")[f"{component.name}-bucket"]
            sse = by_name(
                ev,
                "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            )
            rule = sse[f"{component.name}-encryption"].inputs["rules"][0]
            assert sse[f"{component.name}-encryption"].inputs["bucket"] == bucket.id
            assert rule["applyServerSideEncryptionByDefault"] == {
                "sseAlgorithm": "aws:kms",
                "kmsMasterKeyId": key.outputs["arn"],
            }
            assert rule["bucketKeyEnabled"] is True
            assert key.inputs["enableKeyRotation"] is True
            s3_keys.append(key.outputs["arn"])
            _assert_s3_hardened(ev, component.name, bucket, key.outputs["arn"])
        else:
            key = only(child(ev, component, "gcp:kms/cryptoKey:CryptoKey"), "bucket key")
            bucket = only(child(ev, component, "gcp:storage/bucket:Bucket"), "GCS bucket")
            grant = only(
                child(ev, component, "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"), "grant"
            )
            assert bucket.inputs["encryption"] == {"defaultKmsKeyName": key.id}
            assert grant.inputs["cryptoKeyId"] == key.id
            assert re.fullmatch(
                r"serviceAccount:service-\d+@gs-project-accounts\.iam\.gserviceaccount\.com",
                grant.inputs["member"],
            )
            assert grant.urn in bucket.dependencies, "the agent must hold the key first"
            assert bucket.inputs["uniformBucketLevelAccess"] is True
            assert bucket.inputs["publicAccessPrevention"] == "enforced"
            assert bucket.inputs["versioning"] == {"enabled": True}
            assert bucket.inputs["softDeletePolicy"]["retentionDurationSeconds"] > 0
            assert key.inputs["rotationPeriod"] == "7776000s"
    assert len(s3_keys) == len(set(s3_keys)) == 1


def _assert_s3_hardened(
    ev: StackEvaluation, name: str, bucket: MockedResource, key_arn: str
) -> None:
    for kind, bucket_name in (
        ("bucketPublicAccessBlock:BucketPublicAccessBlock", name),
        ("bucketPublicAccessBlock:BucketPublicAccessBlock", f"{name}-logs"),
    ):
        block = by_name(ev, f"aws:s3/{kind}")[f"{bucket_name}-public-access"]
        assert all(
            block.inputs[k] is True
            for k in (
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            )
        )
    ownership = by_name(ev, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")[
        f"{name}-ownership"
    ]
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    versioning = by_name(ev, "aws:s3/bucketVersioning:BucketVersioning")[f"{name}-versioning"]
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"

    policy = json.loads(
        by_name(ev, "aws:s3/bucketPolicy:BucketPolicy")[f"{name}-policy"].inputs["policy"]
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["DenyInsecureTransport"]["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    assert statements["DenyInsecureTransport"]["Resource"] == [
        bucket.outputs["arn"],
        f"{bucket.outputs['arn']}/*",
    ]
    assert statements["DenyKmsWithoutThisKey"]["Condition"]["Null"] == {
        "s3:x-amz-server-side-encryption-aws-kms-key-id": "true"
    }
    # Only a header that is present and names another key is refused; no header = the default.
    assert statements["DenyOtherKmsKeys"]["Condition"] == {
        "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn},
        "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
    }

    logging = by_name(ev, "aws:s3/bucketLogging:BucketLogging")[f"{name}-access-logs"]
    log_bucket = by_name(ev, "aws:s3/bucket:Bucket")[f"{name}-logs"]
    assert logging.inputs["bucket"] == bucket.id
    assert logging.inputs["targetBucket"] == log_bucket.id
    log_sse = by_name(
        ev, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )[f"{name}-logs-encryption"]
    assert log_sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "AES256"
    }


# --- secrets and outputs -----------------------------------------------------------------------


def test_secrets_are_secret(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    assert {"publicKubeconfig", "privateKubeconfig"} <= ev.secret_outputs
    for provider in ev.of_type("pulumi:providers:kubernetes"):
        assert "kubeconfig" in provider.secret_inputs, provider.name
    for name, value in ev.outputs.items():
        if "PRIVATE KEY" in json.dumps(value):
            assert name in ev.secret_outputs, f"stack output {name} holds a private key in clear"
    for key in ev.of_type("tls:index/privateKey:PrivateKey"):
        assert key.inputs["algorithm"] == "ECDSA"
    # Private keys only ever travel as secrets: into the CSRs and into the CA's signatures.
    for request in ev.of_type("tls:index/certRequest:CertRequest"):
        assert "privateKeyPem" in request.secret_inputs, request.name
    for cert in ev.of_type("tls:index/locallySignedCert:LocallySignedCert"):
        assert "caPrivateKeyPem" in cert.secret_inputs, cert.name


def test_stack_outputs(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    eks = only(ev.of_type("aws:eks/cluster:Cluster"), "EKS")
    gke = only(ev.of_type("gcp:container/cluster:Cluster"), "GKE")
    assert ev.outputs["publicClusterName"] == eks.outputs["name"] == f"hybrid-{ev.stack}"
    assert ev.outputs["privateClusterName"] == gke.outputs["name"]
    assert ev.outputs["publicBucketUrl"] == f"s3://{ev.outputs['publicBucketName']}"
    assert ev.outputs["privateBucketUrl"] == f"gs://{ev.outputs['privateBucketName']}"
    ca = only([c for c in ev.of_type("tls:index/selfSignedCert:SelfSignedCert")], "CA")
    assert ca.inputs["isCaCertificate"] is True
    assert ev.outputs["caCertPem"] == ca.outputs["certPem"]
    kubeconfig = json.loads(ev.outputs["publicKubeconfig"])
    assert kubeconfig["users"][0]["user"]["exec"]["args"][:4] == [
        "eks",
        "get-token",
        "--cluster-name",
        eks.outputs["name"],
    ]


def test_the_private_site_client_certificate_is_exported_as_secret(
    stack_evaluation: StackEvaluation,
) -> None:
    ev = stack_evaluation
    client = only(
        [
            c
            for c in ev.of_type("tls:index/locallySignedCert:LocallySignedCert")
            if "client" in c.name
        ],
        "client certificate",
    )
    assert ev.outputs["clientCertPem"] == client.outputs["certPem"]
    assert "PRIVATE KEY" in ev.outputs["clientKeyPem"]
    assert {"clientCertPem", "clientKeyPem"} <= ev.secret_outputs


def test_eks_admins_get_access_entries_the_provider_waits_for(
    stack_evaluation: StackEvaluation,
) -> None:
    ev = stack_evaluation
    entries = {r.inputs["principalArn"]: r for r in ev.of_type("aws:eks/accessEntry:AccessEntry")}
    assert sorted(entries) == sorted(ev.config.eks_admin_principals)
    associations = ev.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert {a.inputs["principalArn"] for a in associations} == set(entries)
    for association in associations:
        assert association.inputs["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
        assert association.inputs["accessScope"] == {"type": "cluster"}
    eks = only(ev.of_type("aws:eks/cluster:Cluster"), "EKS")
    # The creator keeps the entry EKS bootstraps for it; a second one for it would be refused.
    assert eks.inputs["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is True
    provider = next(p for p in ev.of_type("pulumi:providers:kubernetes") if "public" in p.name)
    assert {a.urn for a in associations} <= set(provider.dependencies), provider.name


def test_model_downloads_skip_the_nat_through_an_s3_gateway_endpoint(
    stack_evaluation: StackEvaluation,
) -> None:
    ev = stack_evaluation
    endpoint = only(ev.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"), "S3 endpoint")
    assert endpoint.inputs["serviceName"] == f"com.amazonaws.{ev.config.public.region}.s3"
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    private_tables = {
        r.id for r in ev.of_type("aws:ec2/routeTable:RouteTable") if "private" in r.name
    }
    assert set(endpoint.inputs["routeTableIds"]) == private_tables


def test_logs_expire_and_incomplete_uploads_are_aborted(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    rules = {
        r.name: r.inputs["rules"]
        for r in ev.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    }
    log_rules = only([v for k, v in rules.items() if k.endswith("-logs-lifecycle")], "log rules")
    assert log_rules[0]["expiration"] == {"days": ev.config.log_retention_days}
    repository = only([v for k, v in rules.items() if "repository" in k], "repository rules")
    abort = [r for r in repository if "abortIncompleteMultipartUpload" in r]
    assert abort and abort[0]["filter"] == {}, "the whole model bucket aborts stale uploads"
    gcs = only(ev.of_type("gcp:storage/bucket:Bucket"), "GCS bucket")
    actions = [rule["action"]["type"] for rule in gcs.inputs["lifecycleRules"]]
    assert "AbortIncompleteMultipartUpload" in actions


def test_gcs_data_access_and_gke_intranode_traffic_are_visible(
    stack_evaluation: StackEvaluation,
) -> None:
    ev = stack_evaluation
    audit = only(ev.of_type("gcp:projects/iAMAuditConfig:IAMAuditConfig"), "audit config")
    assert audit.inputs["service"] == "storage.googleapis.com"
    assert {c["logType"] for c in audit.inputs["auditLogConfigs"]} == {"DATA_READ", "DATA_WRITE"}
    gke = only(ev.of_type("gcp:container/cluster:Cluster"), "GKE")
    assert gke.inputs["enableIntranodeVisibility"] is True
    assert gke.inputs["resourceLabels"]["stack"] == ev.stack


def test_prod_is_larger_and_protected(evaluate) -> None:  # type: ignore[no-untyped-def]
    dev, prod = evaluate("dev"), evaluate("prod")
    assert len(prod.of_type("aws:ec2/natGateway:NatGateway")) == 3
    assert len(dev.of_type("aws:ec2/natGateway:NatGateway")) == 2
    assert only(prod.of_type("aws:eks/cluster:Cluster"), "EKS").inputs["deletionProtection"] is True
    assert (
        only(dev.of_type("gcp:container/cluster:Cluster"), "GKE").inputs["deletionProtection"]
        is False
    )
    assert len(prod.resources) > len(dev.resources)
