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

from gems_graph.shapes.grammar import (
    ARTICLES,
    COLORS,
    DIGITS,
    NUMBER_WORDS,
    PLACE_TOKEN,
    PLACES,
    PLURALS,
    RELATIONS,
    SHAPES,
    SIZES,
    normalize_words,
)

PAD, BOS, UNK = "[pad]", "[bos]", "[unk]"
#: The first release's vocabulary (terse register); the explicit register's words follow it,
#: so fine-tuning from those weights keeps every old token's embedding at its index.
TERSE_VOCAB = [PAD, BOS, UNK, "a", "photo", "of", "and", *SHAPES, *PLURALS, *COLORS, "one", "two", "three", "four", *RELATIONS]
#: Then the explicit register's sizes and places, then the hard suite's larger counts.
VOCAB = TERSE_VOCAB + list(SIZES) + [PLACE_TOKEN + p for p in PLACES] + [w for w in NUMBER_WORDS if w not in TERSE_VOCAB]
#: Long enough for nine objects listed one by one with a size and a colour each.
MAX_LENGTH = 56
_SKIP = {"to", "on", "the"}  # folded into relations / articles by normalisation
_SIZE_WORDS = {"tiny": "small", "big": "large"}


class ShapesTokenizer:
    """Word-level tokenizer: ``[bos]`` + words, padded or cut to ``max_length``."""

    def __init__(self, vocab: list[str], max_length: int):
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.max_length = max_length

    def words(self, text: str) -> list[str]:
        """Normalised words: digits to number words, articles to "a", relations joined."""
        out = []
        for w in normalize_words(text):
            w = {v: k for k, v in NUMBER_WORDS.items()}.get(DIGITS.get(w, 0), w)
            w = _SIZE_WORDS.get(w, w)
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

    def __call__(self, texts: str | list[str]) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        return torch.tensor([self.encode(t) for t in texts], dtype=torch.long)


class ShapesTextEncoder(ModelMixin, ConfigMixin):  # type: ignore[misc]  # diffusers types config_name str in ModelMixin, None in ConfigMixin
    """Learned embeddings + a small transformer; returns per-token states and a pooled vector.

    The pooled ``[bos]`` state conditions the whole UNet (added to its time
    embedding) so global facts (shape, colour, count) do not have to pass only
    through low-resolution cross-attention.

    Each token also gets the embedding of the object phrase it belongs to
    (``segments`` of them, 8 in the shipped model: a colour, size or count word and the shape after it, a
    place or relation word and the shape before it), so "a red circle at the top
    left, a blue square at the right" binds each place to its own object; zero at
    the start, so a model fine-tuned from one without them reads prompts as it did.
    With ``phrase_pooling`` each token's output also gets the mean of its phrase's
    outputs, so the place token carries the object it places (a small transformer
    trained on these captions otherwise reads them as a bag of words: measured, it
    drew "a red square at the left and a blue circle at the right" and the same
    prompt with the objects swapped identically).
    """

    @register_to_config
    def __init__(
        self,
        vocab: tuple[str, ...] = tuple(VOCAB),
        max_length: int = MAX_LENGTH,
        width: int = 128,
        layers: int = 2,
        heads: int = 4,
        visible_pads: int = 12,
        segments: int = 0,
        phrase_pooling: bool = False,
    ):
        super().__init__()
        self.embed = nn.Embedding(len(vocab), width)
        # A saved model without object-phrase embeddings (segments=0) loads and reads as it was.
        self.segment = nn.Embedding(segments, width) if segments else None
        if self.segment is not None:
            nn.init.zeros_(self.segment.weight)
        is_shape = [w in SHAPES or w in PLURALS for w in vocab]
        follows = [w in RELATIONS or w.startswith(PLACE_TOKEN) for w in vocab]
        self.register_buffer("_is_shape", torch.tensor(is_shape, dtype=torch.long), persistent=False)
        self.register_buffer("_follows", torch.tensor(follows, dtype=torch.long), persistent=False)
        self.pos = nn.Parameter(torch.zeros(1, max_length, width))
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        nn.init.normal_(self.pos, std=0.02)

    @property
    def tokenizer(self) -> ShapesTokenizer:
        return ShapesTokenizer(list(self.config["vocab"]), self.config["max_length"])

    def attention_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        """1 for the positions that are read: every real token and the padding within the
        first ``visible_pads`` positions (the first release read 12 positions, padding
        included, so a terse prompt is read exactly as it was); later padding is 0."""
        pad = input_ids == self.config["vocab"].index(PAD)
        late = torch.arange(input_ids.shape[1], device=input_ids.device) >= self.config["visible_pads"]
        return (~(pad & late)).long()

    def segment_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The object phrase of each token: shapes seen before it, counting its own shape for
        a place or relation word that follows one."""
        is_shape, follows = self._is_shape[input_ids], self._follows[input_ids]
        seen = torch.cumsum(is_shape, dim=1)
        seg = torch.where(follows.bool(), seen - 1, seen - is_shape)
        return seg.clamp(0, self.config["segments"] - 1)

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(input_ids) + self.pos[:, : input_ids.shape[1]]
        if self.segment is not None:
            h = h + self.segment(self.segment_ids(input_ids))
        ignored = self.attention_mask(input_ids) == 0
        h = self.norm(self.transformer(h, src_key_padding_mask=ignored))
        if self.config["phrase_pooling"] and self.segment is not None:
            h = h + self._phrase_means(h, input_ids)
        return h, h[:, 0]

    def _phrase_means(self, h: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """For each token, the mean output of the real tokens of its object phrase."""
        real = (input_ids != self.config["vocab"].index(PAD)).to(h.dtype)
        member = torch.nn.functional.one_hot(self.segment_ids(input_ids), self.config["segments"]).to(h.dtype) * real[..., None]
        sums = member.transpose(1, 2) @ h  # (batch, segments, width)
        means = sums / member.sum(1).clamp(min=1.0)[..., None]
        return torch.gather(means, 1, self.segment_ids(input_ids)[..., None].expand(-1, -1, h.shape[-1]))
