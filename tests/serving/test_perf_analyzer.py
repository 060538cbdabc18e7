"""Triton's perf_analyzer as make bench runs it: against a real Triton, read back from its
report, and refusing to start with a message that says how to fix it."""

import json
from pathlib import Path

import pytest

from serving import perf_analyzer
from serving.errors import ServingError

TEXT_MODEL = """
import numpy as np
import triton_python_backend_utils as pb


class TritonPythonModel:
    def execute(self, requests):
        return [pb.InferenceResponse([pb.Tensor("EMBEDDING", np.zeros((1, 4), np.float32))])
                for _ in requests]
"""
TEXT_CONFIG = """name: "texts"
backend: "python"
max_batch_size: 8
input [{ name: "TEXT" data_type: TYPE_STRING dims: [1] }]
output [{ name: "EMBEDDING" data_type: TYPE_FP32 dims: [4] }]
"""
STDOUT = "Request concurrency: 8\n  Client: \n    Request count: 2086\n"
CSV = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,"
    "p90 latency,p95 latency,p99 latency,Avg latency,request/response,response wait\n"
    "8,578.377,5,983,1905,61,10081,744,2,12602,22452,25873,33735,13784,7,13756\n"
)


def test_the_report_is_read_from_its_csv_and_request_count() -> None:
    report = perf_analyzer.parse(STDOUT, CSV)
    assert (report.concurrency, report.requests, report.throughput) == (8, 2086, 578.377)
    assert (report.p50_ms, report.p99_ms) == (12.602, 33.735)
    assert report.breakdown_us["Server Queue"] == 1905
    assert set(report.breakdown_us) == set(perf_analyzer.BREAKDOWN)


def test_each_text_is_one_request_of_one_string(tmp_path: Path) -> None:
    path = perf_analyzer.write_input_data([{"TEXT": ["a"]}, {"TEXT": ["b c"]}], tmp_path / "d")
    assert json.loads(path.read_text()) == {
        "data": [
            {"TEXT": {"content": ["a"], "shape": [1]}},
            {"TEXT": {"content": ["b c"], "shape": [1]}},
        ]
    }


def test_a_missing_debian_library_is_named_with_its_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = tmp_path / "perf_analyzer"
    binary.write_text(
        "#!/bin/sh\necho 'perf_analyzer: error while loading shared libraries: "
        "libb64.so.0d: cannot open shared object file' >&2\nexit 127\n"
    )
    binary.chmod(0o755)
    monkeypatch.setattr(perf_analyzer, "BINARY", binary)
    with pytest.raises(ServingError, match=r"libb64\.so\.0d.*make setup-bench"):
        perf_analyzer.check()


@pytest.mark.local_stack
def test_it_loads_a_real_triton_and_splits_the_request_time(tmp_path: Path) -> None:
    try:
        perf_analyzer.check()
    except ServingError as missing:
        pytest.skip(str(missing))
    from tests.modelkit.triton_support import serving

    repository = tmp_path / "repository"
    (repository / "texts" / "1").mkdir(parents=True)
    (repository / "texts" / "config.pbtxt").write_text(TEXT_CONFIG)
    (repository / "texts" / "1" / "model.py").write_text(TEXT_MODEL)
    data = perf_analyzer.write_input_data([{"TEXT": ["cheap shoes"]}], tmp_path / "data.json")
    with serving(repository, ("texts",), tmp_path) as served:
        report = perf_analyzer.run(served.address, "texts", data, 2, 0.6, tmp_path)
    assert report.concurrency == 2 and report.requests > 10 and report.throughput > 10
    assert 0 < report.p50_ms <= report.p99_ms
    assert report.breakdown_us["Server Compute Infer"] > 0
