"""The two sites and the cloud each one runs on."""

from typing import Literal

Site = Literal["public", "private"]
Cloud = Literal["aws", "gcp"]

SITES: tuple[Site, ...] = ("public", "private")
CLOUD_OF: dict[Site, Cloud] = {"public": "aws", "private": "gcp"}
"""The public site is EKS on AWS; the private site is GKE on GCP."""
