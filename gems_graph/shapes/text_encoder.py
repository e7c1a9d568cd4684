"""Tokenizer and a small text encoder over the closed vocabulary.

The vocabulary lives in the encoder's config, so one ``save_pretrained`` folder
fully describes how text becomes tokens. Words outside it map to ``[unk]``
(the grammar reports them separately; the model just sees "something unknown").
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .grammar import ARTICLES, COLORS, DIGITS, NUMBER_WORDS, PLURALS, RELATIONS, SHAPES, _join_relations, tokenize_words

PAD, BOS, UNK = "[pad]", "[bos]", "[unk]"
VOCAB = (
    [PAD, BOS, UNK, "a", "photo", "of", "and"]
    + list(SHAPES) + list(PLURALS) + list(COLORS) + list(NUMBER_WORDS) + list(RELATIONS)
)
_SKIP = {"to", "on", "the"}  # folded into relations / articles by normalisation


class ShapesTokenizer:
    """Word-level tokenizer: ``[bos]`` + words, padded or cut to ``max_length``."""

    def __init__(self, vocab: list[str], max_length: int):
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.max_length = max_length

    def words(self, text: str) -> list[str]:
        """Normalised words: digits to number words, articles to "a", relations joined."""
        out = []
        for w in _join_relations(tokenize_words(text)):
            w = {v: k for k, v in NUMBER_WORDS.items()}.get(DIGITS.get(w, 0), w)
            if w in ARTICLES:
                w = "a"
            if w in _SKIP:
                continue
            out.append(w)
        return out

    def encode(self, text: str) -> list[int]:
        ids = [self.index[BOS]] + [self.index.get(w, self.index[UNK]) for w in self.words(text)]
        ids = ids[: self.max_length]
        return ids + [self.index[PAD]] * (self.max_length - len(ids))

    def __call__(self, texts: str | list[str]) -> torch.LongTensor:
        if isinstance(texts, str):
            texts = [texts]
        return torch.tensor([self.encode(t) for t in texts], dtype=torch.long)


class ShapesTextEncoder(ModelMixin, ConfigMixin):
    """Learned embeddings + a small transformer; returns per-token states and a pooled vector.

    The pooled ``[bos]`` state conditions the whole UNet (added to its time
    embedding) so global facts (shape, colour, count) do not have to pass only
    through low-resolution cross-attention.
    """

    @register_to_config
    def __init__(self, vocab: tuple[str, ...] = tuple(VOCAB), max_length: int = 12, width: int = 128,
                 layers: int = 2, heads: int = 4):
        super().__init__()
        self.embed = nn.Embedding(len(vocab), width)
        self.pos = nn.Parameter(torch.zeros(1, max_length, width))
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        nn.init.normal_(self.pos, std=0.02)

    @property
    def tokenizer(self) -> ShapesTokenizer:
        return ShapesTokenizer(list(self.config.vocab), self.config.max_length)

    def forward(self, input_ids: torch.LongTensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(input_ids) + self.pos[:, : input_ids.shape[1]]
        h = self.norm(self.transformer(h))
        return h, h[:, 0]
