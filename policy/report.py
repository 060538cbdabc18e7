"""The offline policy review of one stack: evaluate it under mocks, judge it, write it up.

The stack program runs in-process under the shared mocks harness (``infra.offline``), so a
review needs no Pulumi CLI, no cloud account and no network. Besides the pack's policies it
runs the checks that model what the CLI and the clouds would do with the program: the
project files under the CLI's rules, the deploy-order replay (as ``up`` and as
``preview``) and IAM on the requests the real clients send. Their findings are mandatory.
Markdown is written to be posted as a PR comment as-is.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from hybrid.cli import ExitCode
from hybrid.config import ConfigError
from hybrid.paths import PROJECT_ROOT
from infra.offline import StackEvaluation, evaluate_stack
from policy import POLICIES
from policy.client_requests import access_violations
from policy.cost import BUDGET_KEY, GPU_COST_BUDGET, CostEstimate, estimate, usd
from policy.deploy_order import PRECONDITIONS, replay
from policy.engine import Violation, evaluate, stack_view
from policy.pack_config import pack_config, stack_raw_config
from policy.pulumi_cli import project_files_problems

CLOUD_BEHAVIOUR = (
    "Cloud behaviour: Pulumi CLI file rules, deploy order as `up` and as `preview` "
    f"({len(PRECONDITIONS)} preconditions), IAM on the requests the real clients send"
)


class ProgramError(Exception):
    """The stack program itself failed, so there is nothing to judge."""


@dataclass(frozen=True)
class Review:
    stack: str
    resource_counts: dict[str, int]
    violations: list[Violation]
    cost: CostEstimate
    budget_usd: float

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.mandatory]

    @property
    def advisory(self) -> list[Violation]:
        return [v for v in self.violations if not v.mandatory]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.mandatory else ExitCode.OK


def review_stack(stack: str, overrides: Mapping[str, Any] | None = None) -> Review:
    """Run ``stack`` under mocks and evaluate every policy.

    Raises ``ConfigError`` for an invalid stack config and ``ProgramError`` when the
    program fails for any other reason.
    """
    raw = stack_raw_config(stack, overrides)
    evaluation, preview = (_evaluate(stack, overrides, preview) for preview in (False, True))
    settings = pack_config(evaluation.config, raw)
    return Review(
        stack=stack,
        resource_counts=evaluation.counts_by_type(),
        violations=[
            *evaluate(evaluation.resources, POLICIES, settings),
            *cloud_behaviour(evaluation, preview),
        ],
        cost=estimate(stack_view(evaluation.resources).values()),
        budget_usd=settings[GPU_COST_BUDGET.name][BUDGET_KEY],
    )


def cloud_behaviour(evaluation: StackEvaluation, preview: StackEvaluation) -> list[Violation]:
    """What the CLI and the clouds would refuse that no policy sees in the inputs."""

    def mandatory(check: str, urn: str | None, message: str) -> Violation:
        return Violation(check, "mandatory", "high", urn, message)

    found = [mandatory("pulumi-cli-files", None, m) for m in project_files_problems(PROJECT_ROOT)]
    for run, label in ((evaluation, "up"), (preview, "preview")):
        found += [
            mandatory(f"deploy-order/{u.precondition}", u.urn, f"{label}: {u.message}")
            for u in replay(run)
        ]
    found += [mandatory("iam-client-requests", None, m) for m in access_violations(evaluation)]
    return found


def _evaluate(stack: str, overrides: Mapping[str, Any] | None, preview: bool) -> StackEvaluation:
    try:
        return evaluate_stack(stack, preview=preview, config_overrides=overrides)
    except ConfigError:
        raise
    except pulumi.RunError as error:  # the program's own message for its user
        raise ProgramError(str(error)) from error
    except Exception as error:
        raise ProgramError(f"{type(error).__name__}: {error}") from error


# --- rendering ------------------------------------------------------------------------


def to_markdown(review: Review, detail: bool = False) -> str:
    """The review as Markdown; ``detail`` adds the count of every resource type."""
    status = (
        f"❌ {len(review.mandatory)} mandatory violation(s)" if review.mandatory else "✅ passed"
    )
    total = sum(review.resource_counts.values())
    lines = [
        f"### Policy review: `{review.stack}` — {status}",
        "",
        f"**{total} resources** · {len(review.mandatory)} mandatory · "
        f"{len(review.advisory)} advisory · GPU cost {usd(review.cost.min_monthly)} to "
        f"{usd(review.cost.max_monthly)}/month (budget {usd(review.budget_usd)})",
        "",
        f"{CLOUD_BEHAVIOUR}: checked.",
        "",
        "#### Violations",
        "",
    ]
    if review.violations:
        lines += ["| Policy | Resource | Severity | Level | Message |", "|---|---|---|---|---|"]
        lines += [
            f"| {v.policy} | `{v.resource}` | {v.severity} | {v.enforcement} | {_cell(v.message)} |"
            for v in sorted(review.violations, key=lambda v: (not v.mandatory, v.policy))
        ]
    else:
        lines.append(f"None: all {len(POLICIES)} policies pass.")
    lines += ["", "#### Estimated monthly GPU cost", "", *_cost_table(review.cost), ""]
    if not detail:
        lines.append(f"Resources by provider: {_by_provider(review.resource_counts)}.")
        return "\n".join(lines) + "\n"
    lines += [
        f"<details><summary>Resources by type ({total})</summary>",
        "",
        "| Type | Count |",
        "|---|---:|",
        *(f"| `{type_}` | {count} |" for type_, count in review.resource_counts.items()),
        "",
        "</details>",
    ]
    return "\n".join(lines) + "\n"


def _by_provider(counts: Mapping[str, int]) -> str:
    """``aws 120 · gcp 60 · …`` over type tokens ``<package>:<module>:<Type>``, most first;
    ``hybrid`` counts the stack's own components."""
    totals: dict[str, int] = {}
    for type_, count in counts.items():
        package = type_.split(":", 1)[0]
        totals[package] = totals.get(package, 0) + count
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    types = f"{len(counts)} types; `--detail` lists them"
    return " · ".join(f"{package} {count}" for package, count in ranked) + f" ({types})"


def _cost_table(cost: CostEstimate) -> list[str]:
    if not cost.pools:
        return ["No GPU pools."]
    rows = [
        "| Pool | Cloud | GPU | GPUs/node | Nodes | Pricing | $/GPU-hour | Min scale | Max scale |",
        "|---|---|---|---:|---|---|---:|---:|---:|",
    ]
    for p in cost.pools:
        price = f"{p.usd_per_gpu_hour:.3f}" if p.usd_per_gpu_hour is not None else "no price"
        pricing = "spot" if p.spot else "on-demand"
        rows.append(
            f"| {p.name} | {p.cloud} | {p.gpu} | {p.gpus_per_node} | {p.min_nodes} to "
            f"{p.max_nodes} | {pricing} | {price} | {usd(p.monthly(p.min_nodes))} "
            f"| {usd(p.monthly(p.max_nodes))} |"
        )
    rows.append(
        f"| **Total** | | | | | | | **{usd(cost.min_monthly)}** | **{usd(cost.max_monthly)}** |"
    )
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_json(review: Review) -> str:
    document = {
        "stack": review.stack,
        "passed": not review.mandatory,
        "resourceCounts": review.resource_counts,
        "violations": [
            {
                "policy": v.policy,
                "resource": v.resource,
                "urn": v.urn,
                "severity": v.severity,
                "enforcement": v.enforcement,
                "message": v.message,
            }
            for v in review.violations
        ],
        "gpuCost": {
            "minMonthlyUsd": round(review.cost.min_monthly, 2),
            "maxMonthlyUsd": round(review.cost.max_monthly, 2),
            "budgetUsd": review.budget_usd,
            "pools": [
                {
                    "name": p.name,
                    "cloud": p.cloud,
                    "gpu": p.gpu,
                    "gpusPerNode": p.gpus_per_node,
                    "minNodes": p.min_nodes,
                    "maxNodes": p.max_nodes,
                    "spot": p.spot,
                    "usdPerGpuHour": p.usd_per_gpu_hour,
                }
                for p in review.cost.pools
            ],
        },
    }
    return json.dumps(document, indent=2) + "\n"
