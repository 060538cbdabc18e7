"""python -m modelkit: --help everywhere, machine-readable output, plain-words errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelkit.__main__ import main


@pytest.mark.parametrize("command", [[], ["build"], ["bench"], ["plan-jobs"], ["fetch-plans"]])
def test_every_command_has_help(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modelkit", *command, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: python -m modelkit" in done.stdout


def test_build_reports_targets_and_model_quality_as_json(built, tmp_path: Path, capsys) -> None:
    assert main(["build", "--stack", "dev", "--out", str(tmp_path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["targets"]) == ["local", "private", "public"]
    assert report["artifacts"]["ctr_ranker"]["training"]["auc"] >= 0.75
    assert min(report["artifacts"]["minilm"]["min_cosine_vs_eager"].values()) >= 0.9999
    for target, entry in report["targets"].items():
        assert (
            entry["content_hash"]
            == json.loads((tmp_path / target / "manifest.json").read_text())["content_hash"]
        )


def test_a_config_mistake_is_an_error_message_and_exit_code_2(capsys) -> None:
    assert main(["build", "--stack", "nosuchstack"]) == 2
    error = capsys.readouterr().err
    assert "error:" in error and "known stacks" in error and "Traceback" not in error


def test_plan_jobs_prints_kubernetes_yaml(capsys) -> None:
    argv = ["plan-jobs", "--stack", "prod", "--site", "private", "--repo-url", "gs://b/repo/h"]
    assert main(argv) == 0
    jobs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [job["kind"] for job in jobs] == ["Job", "Job"]


def test_the_build_summary_reads_each_recipes_own_measure() -> None:
    """The plain build output prints one line per artifact (the INT8 one used to crash it)."""
    from modelkit.__main__ import _summary
    from modelkit.quality import Quality

    gated = Quality(0.9966, 0.9989, 0.9502, texts=10_500, queries=500, documents=10_000)
    assert _summary({"quality": gated.facts()}) == (
        "quality gate vs FP32 on 10500 texts: minimum cosine 0.99660, mean 0.99890, "
        "top-10 agreement 0.9502 (passed)"
    )
    assert "AUC 0.8643" in _summary({"training": {"auc": 0.8643, "seed": 1}})
    assert "onnx 0.9999998" in _summary({"min_cosine_vs_eager": {"onnx": 0.9999998}})
