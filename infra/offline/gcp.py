"""Fabricated outputs of the GCP resources the stack creates."""

import base64
import ipaddress
import json
from typing import Any

from infra.offline.registry import FabricatingMocks, Fabricator, autoname, fabricates


def _gcp_global(kind: str) -> Fabricator:
    def fabricate(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
        resource = autoname(mocks, name, inputs, "name")
        id_ = f"projects/{mocks.project}/global/{kind}/{resource}"
        return id_, {"name": resource, "selfLink": mocks.gcp_link(id_), "project": mocks.project}

    return fabricate


def _gcp_regional(kind: str) -> Fabricator:
    def fabricate(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
        resource = autoname(mocks, name, inputs, "name")
        region = mocks.gcp_region_of(inputs)
        id_ = f"projects/{mocks.project}/regions/{region}/{kind}/{resource}"
        return id_, {
            "name": resource,
            "region": region,
            "selfLink": mocks.gcp_link(id_),
            "project": mocks.project,
        }

    return fabricate


fabricates("gcp:compute/network:Network")(_gcp_global("networks"))
fabricates("gcp:compute/firewall:Firewall")(_gcp_global("firewalls"))
fabricates("gcp:compute/externalVpnGateway:ExternalVpnGateway")(_gcp_global("externalVpnGateways"))
fabricates("gcp:compute/router:Router")(_gcp_regional("routers"))


@fabricates("gcp:compute/subnetwork:Subnetwork")
def _subnetwork(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    id_, outputs = _gcp_regional("subnetworks")(mocks, name, inputs)
    gateway = next(ipaddress.IPv4Network(inputs["ipCidrRange"]).hosts())
    return id_, outputs | {"gatewayAddress": str(gateway)}


@fabricates("gcp:compute/haVpnGateway:HaVpnGateway")
def _ha_vpn_gateway(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    id_, outputs = _gcp_regional("vpnGateways")(mocks, name, inputs)
    interfaces = [
        {"id": i, "ipAddress": mocks.ip("35.242.0.0/16", "ha-vpn", name, str(i))} for i in (0, 1)
    ]
    return id_, outputs | {"vpnInterfaces": interfaces}


@fabricates("gcp:compute/vPNTunnel:VPNTunnel")
def _vpn_tunnel(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    id_, outputs = _gcp_regional("vpnTunnels")(mocks, name, inputs)
    return id_, outputs | {
        "tunnelId": str(int(mocks.hex("tunnel", name), 16))[:19],
        "detailedStatus": "Tunnel is up and running.",
        "sharedSecretHash": mocks.hex("psk-hash", name, length=27),
    }


@fabricates(
    "gcp:compute/routerInterface:RouterInterface",
    "gcp:compute/routerPeer:RouterPeer",
    "gcp:compute/routerNat:RouterNat",
)
def _router_part(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    part = autoname(mocks, name, inputs, "name")
    region = mocks.gcp_region_of(inputs)
    return f"{mocks.project}/{region}/{inputs.get('router')}/{part}", {"name": part}


@fabricates("gcp:compute/networkPeeringRoutesConfig:NetworkPeeringRoutesConfig")
def _peering_routes(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return (
        f"projects/{mocks.project}/global/networks/{inputs['network']}/networkPeerings/{inputs['peering']}",
        {},
    )


@fabricates("gcp:kms/keyRing:KeyRing")
def _key_ring(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    ring = autoname(mocks, name, inputs, "name")
    return f"projects/{mocks.project}/locations/{inputs['location']}/keyRings/{ring}", {
        "name": ring
    }


@fabricates("gcp:kms/cryptoKey:CryptoKey")
def _crypto_key(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    key = autoname(mocks, name, inputs, "name")
    return f"{inputs['keyRing']}/cryptoKeys/{key}", {
        "name": key,
        "primaries": [{"state": "ENABLED"}],
    }


@fabricates(
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
    "gcp:projects/iAMMember:IAMMember",
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:serviceaccount/iAMMember:IAMMember",
)
def _iam_member(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    scope = inputs.get("cryptoKeyId") or inputs.get("bucket") or inputs.get("project") or ""
    scope = scope or inputs.get("serviceAccountId", "")
    return f"{scope}/{inputs['role']}/{inputs['member']}", {"etag": "BwY" + mocks.hex("etag", name)}


@fabricates("gcp:projects/iAMAuditConfig:IAMAuditConfig")
def _audit_config(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    return f"{inputs['project']}/{inputs['service']}", {"etag": "BwY" + mocks.hex("etag", name)}


@fabricates("gcp:serviceaccount/account:Account")
def _service_account(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    email = f"{inputs['accountId']}@{mocks.project}.iam.gserviceaccount.com"
    id_ = f"projects/{mocks.project}/serviceAccounts/{email}"
    return id_, {
        "email": email,
        "name": id_,
        "member": f"serviceAccount:{email}",
        "uniqueId": str(int(mocks.hex("sa", name), 16))[:21],
    }


@fabricates("gcp:storage/bucketObject:BucketObject")
def _gcs_object(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    bucket, key = inputs["bucket"], inputs["name"]
    link = f"https://www.googleapis.com/storage/v1/b/{bucket}/o/{key.replace('/', '%2F')}"
    return f"{bucket}-{key}", {
        "outputName": key,
        "selfLink": link,
        "mediaLink": f"{link}?alt=media",
        "generation": int(mocks.hex("generation", key, length=12), 16),
        "md5hash": base64.b64encode(bytes.fromhex(mocks.hex("md5", key, length=32))).decode(),
    }


@fabricates("gcp:storage/bucket:Bucket")
def _gcs_bucket(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    bucket = inputs.get("name") or f"{name}-{mocks.hex('bucket', name, length=7)}"
    return bucket, {
        "name": bucket,
        "url": f"gs://{bucket}",
        "selfLink": f"https://www.googleapis.com/storage/v1/b/{bucket}",
        "project": mocks.project,
        "projectNumber": int(mocks.project_number),
    }


@fabricates("gcp:container/cluster:Cluster")
def _gke_cluster(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    cluster = autoname(mocks, name, inputs, "name")
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


@fabricates("gcp:container/nodePool:NodePool")
def _gke_node_pool(mocks: FabricatingMocks, name: str, inputs: dict[str, Any]) -> tuple:
    pool = autoname(mocks, name, inputs, "name")
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
