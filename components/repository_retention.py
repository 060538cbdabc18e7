"""Repository retention: the lifecycle rules that delete retired ``repo/<hash>/`` prefixes.

Both buckets expire the same prefixes after the same age: ``retired_prefixes`` names every
``repo/<hash>`` except the served one, so a rule can never touch the version being served,
however old it is. S3 holds the rules in a separate BucketLifecycleConfiguration, GCS on the
bucket itself; each function returns them in its cloud's shape.
"""

import pulumi_aws as aws
import pulumi_gcp as gcp

from hybrid.bucket_access import REPO_ROOT

HEX_DIGITS = "0123456789abcdef"
RETENTION_DEPTH = 4
"""Hash characters the lifecycle rule looks at: 4 x 15 = 60 prefixes. A retired version whose
hash shares its first 4 characters with the served one (1 in 65536) is kept, never lost."""


def retired_prefixes(served_hash: str, depth: int = RETENTION_DEPTH) -> list[str]:
    """Prefixes that cover every ``repo/<hash>`` except ``served_hash``.

    For each of the first ``depth`` positions, every other hex digit after the served hash's
    own leading characters: any other hash matches exactly one of them (unless it shares all
    ``depth`` leading characters), the served hash matches none.
    """
    return [
        f"{REPO_ROOT}{served_hash[:i]}{digit}"
        for i in range(depth)
        for digit in HEX_DIGITS
        if digit != served_hash[i]
    ]


ABORT_INCOMPLETE_UPLOADS: aws.s3.BucketLifecycleConfigurationRuleArgsDict = {
    # An interrupted upload's parts are billed and invisible until aborted; anywhere in the bucket.
    "id": "abort-incomplete-uploads",
    "status": "Enabled",
    "filter": {},
    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
}


def s3_lifecycle_rules(
    served_hash: str, retention_days: int
) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
    """Expire retired prefixes once they are ``retention_days`` old; keep the bucket tidy."""
    expire: list[aws.s3.BucketLifecycleConfigurationRuleArgsDict] = [
        {
            "id": f"expire-{prefix.replace('/', '-')}",
            "status": "Enabled",
            "filter": {"prefix": prefix},
            "expiration": {"days": retention_days},
            # Versioning turns an expired object into a noncurrent version: purge it a day later.
            "noncurrent_version_expiration": {"noncurrent_days": 1},
        }
        for prefix in retired_prefixes(served_hash)
    ]
    housekeeping: aws.s3.BucketLifecycleConfigurationRuleArgsDict = {
        "id": "repo-housekeeping",
        "status": "Enabled",
        "filter": {"prefix": REPO_ROOT},
        "expiration": {"expired_object_delete_marker": True},
    }
    return [*expire, housekeeping, ABORT_INCOMPLETE_UPLOADS]


def gcs_lifecycle_rules(
    served_hash: str, retention_days: int
) -> list[gcp.storage.BucketLifecycleRuleArgsDict]:
    """The same expiry for a GCS bucket's ``lifecycle_rules`` (GCS keeps them on the bucket)."""
    prefixes = retired_prefixes(served_hash)
    return [
        {
            "action": {"type": "Delete"},
            "condition": {"age": retention_days, "matches_prefixes": prefixes},
        },
        {
            "action": {"type": "Delete"},
            "condition": {
                "days_since_noncurrent_time": 1,
                "with_state": "ARCHIVED",
                "matches_prefixes": [REPO_ROOT],
            },
        },
        {"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": 1}},
    ]
