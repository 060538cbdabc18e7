"""The GPU table's machine types: the clouds' real ones, with the GPUs each carries."""

import pulumi_aws as aws
import pytest

from hybrid.gpus import GPU_TYPES, N1_MACHINE_VCPUS, carried_by


def test_every_ec2_instance_type_is_real_and_every_size_of_its_family_is_listed() -> None:
    """pulumi_aws's InstanceType enum comes from the EC2 API: no made-up size, none missing."""
    real = {t.value for t in aws.ec2.InstanceType}
    for gpu in GPU_TYPES.values():
        listed = set(gpu.aws_instances)
        family = {t for t in real if t.split(".", 1)[0] in gpu.aws_instance_families}
        assert listed == family, gpu.name


def test_machine_types_belong_to_one_gpu_each() -> None:
    for cloud in ("aws", "gcp"):
        machines = [
            m
            for gpu in GPU_TYPES.values()
            for m in (gpu.aws_instances if cloud == "aws" else gpu.gcp_machines)
        ]
        assert len(machines) == len(set(machines)), cloud


@pytest.mark.parametrize(
    ("cloud", "machine", "gpu", "count"),
    [
        ("aws", "g4dn.xlarge", "t4", 1),
        ("aws", "g4dn.12xlarge", "t4", 4),
        ("aws", "g5.48xlarge", "a10g", 8),
        ("aws", "p4de.24xlarge", "a100-80gb", 8),
        ("gcp", "g2-standard-8", "l4", 1),
        ("gcp", "g2-standard-24", "l4", 2),
        ("gcp", "a2-megagpu-16g", "a100-40gb", 16),
        ("gcp", "a3-highgpu-8g", "h100-80gb", 8),
    ],
)
def test_a_fixed_count_machine_names_its_gpu_and_count(
    cloud: str, machine: str, gpu: str, count: int
) -> None:
    assert carried_by(cloud, machine) == (GPU_TYPES[gpu], count)
    assert GPU_TYPES[gpu].gpu_counts(cloud, machine) == (count,)


@pytest.mark.parametrize(
    ("cloud", "machine"),
    [("aws", "g4dn.huge"), ("aws", "m5.xlarge"), ("gcp", "n1-standard-8"), ("gcp", "e2-medium")],
)
def test_other_machine_types_carry_no_fixed_gpus(cloud: str, machine: str) -> None:
    assert carried_by(cloud, machine) is None


@pytest.mark.parametrize(
    ("gpu", "machine", "counts"),
    [
        ("t4", "n1-standard-1", (1, 2, 4)),
        ("t4", "n1-highmem-32", (1, 2, 4)),
        ("t4", "n1-standard-64", (4,)),
        ("v100", "n1-standard-8", (1, 2, 4, 8)),
        ("v100", "n1-highcpu-16", (2, 4, 8)),
        ("v100", "n1-highmem-96", (8,)),
        ("l4", "n1-standard-8", ()),
        ("t4", "n1-ultramem-40", ()),
    ],
)
def test_n1_machines_attach_what_their_vcpus_allow(
    gpu: str, machine: str, counts: tuple[int, ...]
) -> None:
    assert GPU_TYPES[gpu].gpu_counts("gcp", machine) == counts


def test_n1_machine_types_are_the_predefined_ones() -> None:
    assert len(N1_MACHINE_VCPUS) == 22
    assert N1_MACHINE_VCPUS["n1-standard-1"] == 1 and N1_MACHINE_VCPUS["n1-highcpu-96"] == 96


def test_gpu_types_are_hashable_and_print_briefly() -> None:
    """Sets of GPU types (a site's GPUs) must work although the machine tables are dicts."""
    assert len({*GPU_TYPES.values(), *GPU_TYPES.values()}) == len(GPU_TYPES)
    assert "aws_instances" not in repr(GPU_TYPES["l4"])
