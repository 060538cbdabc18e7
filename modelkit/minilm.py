"""all-MiniLM-L6-v2 as the module we export: BERT plus pooling and normalization.

Mean pooling and L2 normalization live inside ``SentenceEncoder`` so that every exported
format (ONNX, TorchScript, TensorRT) returns the finished embedding, and the Triton
ensemble needs no post-processing step.
"""

import warnings

import torch
import torch.nn.functional as F

from modelkit.tokenization import model_dir

EMBEDDING_DIM = 384
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "sentence_embedding"


def load_bert() -> torch.nn.Module:
    """The pretrained BertModel, in eval mode, from the package folder only."""
    from transformers import AutoModel
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return AutoModel.from_pretrained(str(model_dir()), local_files_only=True).eval()


class SentenceEncoder(torch.nn.Module):
    """BERT + masked mean pooling + L2 normalization: token ids in, unit vector out."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        # A real text always has [CLS] and [SEP]; clamping the count at 1 (not 1e-9) only
        # matters for all-zero warmup masks and stays finite in FP16 TensorRT engines.
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return F.normalize(pooled, p=2.0, dim=1)


def load_encoder() -> SentenceEncoder:
    return SentenceEncoder(load_bert()).eval()


def example_inputs(batch: int, length: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Plausible token ids ([CLS] words [SEP]) for export checks and benchmarks."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1996, 29612, (batch, length), generator=generator)
    ids[:, 0], ids[:, -1] = 101, 102
    return ids, torch.ones_like(ids)
