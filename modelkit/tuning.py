"""Instance counts, dynamic batching and thread budgets per target: tables, not code."""

from dataclasses import dataclass

from hybrid.precision import FP32, INT8

MAX_SEQUENCE_LENGTH = 128
"""Longer texts are truncated: the tokenizer model, the export and the TensorRT profile agree."""
LENGTH_BUCKETS = (16, 32, 64, MAX_SEQUENCE_LENGTH)
"""Widths the Triton tokenizer pads to, so that requests of similar length batch together."""


@dataclass(frozen=True)
class Tuning:
    """How Triton runs one model on one kind of target."""

    instances: int
    """Model instances (python-backend processes on CPU, execution contexts on GPU)."""
    preferred_batch_sizes: tuple[int, ...]
    """Batch sizes the dynamic batcher aims for (each <= the model's max_batch_size)."""
    max_queue_delay_us: int
    """How long the dynamic batcher may hold a request to fill a preferred batch."""
    threads: int = 1
    """CPU threads per instance: onnxruntime intra-op threads, or torch threads."""
    spinning: bool = False
    """onnxruntime's idle intra-op threads spin instead of sleeping. With sleeping threads
    every parallel section of a run waits for a wake-up: 1 x 2 threads served INT8 at one
    client in 4.74 ms asleep against 3.27 ms spinning (perf_analyzer, docs/local-mode.md).
    Spinning threads take the cores from any other instance, so only a lone one spins."""


# =====================================================================================
# LOCAL TUNING TABLE: the local Triton (CPU, python backend only).
# The local-mode owner (serving/) tunes these values against the serving benchmark
# (target: >= 0.9x in-process throughput at 32 concurrent clients). Change values here;
# `make models` re-renders the local target.
# =====================================================================================
LOCAL_TUNING: dict[str, Tuning] = {
    "ctr_ranker": Tuning(
        instances=1, preferred_batch_sizes=(64, 128), max_queue_delay_us=1000, threads=1
    ),
}
# text_embedding is one python model here (tokenize + encode, placement.FUSED_ON_LOCAL),
# tuned per precision. No queue delay: at one client a request runs at once; under load
# requests queue behind the busy instances anyway and each execute() takes all of them.
# Measured with perf_analyzer on 2 cores (texts/s at 32 clients, p50 at 1 client):
#   FP32: 1 x 2 spinning 610 / 3.71 ms against 2 x 1: 613 / 5.92 ms, 2 x 2 asleep: 465 / 6.02
#   INT8: 2 x 1: 898 / 4.15 ms against 1 x 2 spinning: 627 / 3.27 ms, 2 x 2 asleep: 666 / 4.97
# FP32's compute per batch dwarfs the python work around it, so one instance on both cores
# loses nothing under load; INT8's does not, and two instances overlap one's python with
# the other's onnxruntime (two spinning instances starve each other: not an option).
LOCAL_TEXT_EMBEDDING: dict[str, Tuning] = {
    FP32: Tuning(
        instances=1, preferred_batch_sizes=(), max_queue_delay_us=0, threads=2, spinning=True
    ),
    INT8: Tuning(instances=2, preferred_batch_sizes=(), max_queue_delay_us=0, threads=1),
}
# Widths the local text_embedding pads each request to. On CPU, padding costs compute one
# for one and batching gains little, so the local target pads finely (short queries are
# ~8-12 tokens); GPU targets keep tokenization.LENGTH_BUCKETS.
# make bench: 0.80x -> 0.95x in-process at 32.
LOCAL_LENGTH_BUCKETS = (8, 12, 16, 24, 32, 48, 64, 128)
# ================================ end of LOCAL TUNING TABLE ===========================

GPU_TUNING: dict[str, Tuning] = {
    # The tokenizer runs on the GPU node's CPUs; two instances keep the GPU fed.
    "tokenizer": Tuning(instances=2, preferred_batch_sizes=(), max_queue_delay_us=100),
    "minilm_encoder": Tuning(
        instances=1, preferred_batch_sizes=(16, 32, 64), max_queue_delay_us=500
    ),
    "ctr_ranker": Tuning(instances=1, preferred_batch_sizes=(64, 128, 256), max_queue_delay_us=200),
}
