"""Instance counts, dynamic batching and thread budgets per target: tables, not code."""

from dataclasses import dataclass

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
    spin_us: int = 0
    """How long onnxruntime's idle intra-op threads spin for work before they sleep (0:
    they never spin). Asleep, every parallel section of a run waits for a wake-up; spinning
    without end, they take the cores from Triton and the python work around each run."""


# =====================================================================================
# LOCAL TUNING TABLE: the local Triton (CPU, python backend only).
# The local-mode owner (serving/) tunes these values against the serving benchmark
# (target: >= 0.9x in-process throughput at 32 concurrent clients). Change values here;
# `make models` re-renders the local target.
# =====================================================================================
LOCAL_TUNING: dict[str, Tuning] = {
    # text_embedding is one python model here (tokenize + encode, placement.FUSED_ON_LOCAL).
    # No queue delay: at one client a request runs at once; under load requests queue behind
    # the busy instances anyway and each execute() takes all of them. One instance on both
    # cores, its threads spinning 100 us between parallel sections: interleaved perf_analyzer
    # runs on 2 cores (docs/local-mode.md) put it at the in-process p50 + 1 ms at one client
    # (2 x 1 thread: + 2-4 ms) and at 2 x 1's throughput at 32 in FP32, 0.89x in INT8.
    "text_embedding": Tuning(
        instances=1, preferred_batch_sizes=(), max_queue_delay_us=0, threads=2, spin_us=100
    ),
    "ctr_ranker": Tuning(
        instances=1, preferred_batch_sizes=(64, 128), max_queue_delay_us=1000, threads=1
    ),
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
