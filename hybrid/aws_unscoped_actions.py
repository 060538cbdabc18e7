"""AWS actions that cannot be scoped: the Service Authorization Reference lists them with no
resource type, so a policy can grant them only on ``Resource: "*"``.

The Cluster Autoscaler's IRSA role needs exactly these; the least-privilege policy allows a
``*`` statement only when it is made of them alone.
"""

CLUSTER_AUTOSCALER_READS = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
)
