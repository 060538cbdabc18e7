"""Site outages: a shared model loses no request when a site dies mid-run; a private-only
model fails closed with the documented error and never reaches the public site."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from serving.clients import EmbeddingClient, RankerClient
from serving.endpoints import PROJECT_ROOT
from serving.errors import SiteUnavailableError
from serving.inprocess import InProcessEmbedder
from serving.local import processes
from serving.local.state import LocalState
from serving.routing import RetryPolicy, Router

pytestmark = pytest.mark.local_stack

REQUESTS = 2000
KILL_AFTER = 300


def kill_site(state: LocalState, site: str) -> None:
    os.killpg(state.processes[f"triton-{site}"].pid, signal.SIGKILL)


def requests_seen(state: LocalState, site: str) -> Counter[str]:
    """Inference requests a site counted per model, successful or not."""
    with urllib.request.urlopen(f"http://{state.sites[site].metrics}/metrics", timeout=5) as r:
        text = r.read().decode()
    pattern = r'^nv_inference_request_(?:success|failure)\{[^}]*model="([^"]+)"[^}]*\} (\S+)$'
    seen: Counter[str] = Counter()
    for model, value in re.findall(pattern, text, re.MULTILINE):
        seen[model] += int(float(value))
    return seen


def test_killing_public_mid_run_loses_no_request(
    local_stack: LocalState, state_dir: Path, reference: InProcessEmbedder
) -> None:
    texts = [f"query {i}: waterproof hiking boots size {i % 13}" for i in range(50)]
    expected = reference.embed(texts)
    router = Router.from_state(state_dir / "state.json", policy=RetryPolicy(deadline=60.0))
    client = EmbeddingClient(router, batch_size=1)
    done = threading.Semaphore(0)

    def request(i: int) -> np.ndarray:
        (embedding,) = client.embed([texts[i % len(texts)]])
        done.release()
        return embedding

    def killer() -> None:
        for _ in range(KILL_AFTER):
            done.acquire()
        kill_site(local_stack, "public")

    assassin = threading.Thread(target=killer)
    assassin.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            served = list(pool.map(request, range(REQUESTS)))
    finally:
        assassin.join(timeout=120)
        router.close()
    assert not local_stack.processes["triton-public"].alive(), "public was killed mid-run"
    assert len(served) == REQUESTS, "zero requests lost"
    cosines = [float(s @ expected[i % len(texts)]) for i, s in enumerate(served)]
    assert min(cosines) >= 0.9999
    public = router.attempts[("public", "text_embedding")]
    private = router.attempts[("private", "text_embedding")]
    assert public >= KILL_AFTER and private >= REQUESTS - public, (public, private)


def test_private_only_requests_fail_closed_while_private_is_down(
    local_stack: LocalState, state_dir: Path
) -> None:
    public_before = requests_seen(local_stack, "public")
    kill_site(local_stack, "private")
    port = int(local_stack.sites["private"].endpoint.grpc.rsplit(":", 1)[1])
    # A killed server still accepts connections while the kernel tears it down.
    processes.wait_until(lambda: not processes.port_open(port), [], "private to close", 30)
    policy = RetryPolicy(deadline=3.0, attempt_timeout=1.0)
    router = Router.from_state(state_dir / "state.json", policy=policy, prefer=["public"])
    try:
        ranker = RankerClient(router)
        with pytest.raises(SiteUnavailableError) as raised:
            ranker.score([7], [11], np.zeros((1, 8), np.float32))
        assert raised.value.sites == ("private",)
        assert "placed only there; never sent elsewhere" in str(raised.value)
        assert router.attempts[("private", "ctr_ranker")] == policy.refused_attempts, (
            f"the refused connection was retried a few times, then given up: {raised.value}"
        )
        assert router.attempts[("public", "ctr_ranker")] == 0
        embedding = EmbeddingClient(router).embed(["public still serves shared models"])
        assert embedding.shape == (1, 384)
    finally:
        router.close()
    started = time.monotonic()
    cli = subprocess.run(
        [sys.executable, "-m", "serving", "rank", "--state", str(state_dir / "state.json"),
         "--prefer", "public", "--deadline", "600", "--user", "7", "--items", "1", "2"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300,
    )  # fmt: skip
    assert cli.returncode == SiteUnavailableError.exit_code, cli.stdout + cli.stderr
    assert time.monotonic() - started < 120, "failed closed without waiting out its deadline"
    assert "never sent elsewhere" in cli.stderr, "errors go to stderr"
    seen = requests_seen(local_stack, "public") - public_before
    assert seen == {"text_embedding": 1}, (
        "public counted the one shared-model request (one fused model locally), no ranker request"
    )
