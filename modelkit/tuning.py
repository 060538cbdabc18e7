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


# =====================================================================================
# LOCAL TUNING TABLE: the local Triton (CPU, python backend only).
# The local-mode owner (serving/) tunes these values against the serving benchmark
# (target: >= 0.9x in-process throughput at 32 concurrent clients). Change values here;
# `make models` re-renders the local target.
# =====================================================================================
LOCAL_TUNING: dict[str, Tuning] = {
    "tokenizer": Tuning(instances=1, preferred_batch_sizes=(), max_queue_delay_us=100),
    # Two single-threaded instances beat one with two threads on 2 cores: no intra-op
    # spinning against the tokenizer and Triton, and two batches run at once. Under load
    # requests queue anyway, so a short delay without preferred sizes batches as well at 32
    # clients and costs less at 1 (make bench).
    "minilm_encoder": Tuning(
        instances=2, preferred_batch_sizes=(), max_queue_delay_us=300, threads=1
    ),
    "ctr_ranker": Tuning(
        instances=1, preferred_batch_sizes=(64, 128), max_queue_delay_us=1000, threads=1
    ),
}
# Widths the local tokenizer pads to. On CPU, padding costs compute one for one and
# batching gains little, so the local target pads finely (short queries are ~8-12 tokens);
# GPU targets keep tokenization.LENGTH_BUCKETS. make bench: 0.80x -> 0.95x in-process at 32.
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
