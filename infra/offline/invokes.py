"""Answers to the data-source invokes the program makes (caller identity, region, project)."""

from infra.offline.registry import INVOKES

INVOKES |= {
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
