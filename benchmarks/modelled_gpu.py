"""A plugin (``GEMS_PLUGINS=modelled_gpu``) that registers ``modelled-gpu:``, a GPU as modelled.

``modelled-gpu:?batch=8&latency=1.0`` takes ``latency`` seconds for each batch of up to
``batch`` images, whatever the batch holds, as a diffusion model on a GPU does, and paints
each image with the test colour world. ``benchmarks/serve_generator.py --model
modelled-gpu:`` serves it behind ``gems serve-generator`` to measure what the server's
queue and cross-client batching give when the model, not the CPU, is the limit.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from PIL import Image

from gems_graph.models.generator import GenerationRequest
from gems_graph.models.registry import register_generator
from gems_graph.testing import ColourGenerator


class ModelledGpu:
    """``latency`` seconds a batch of up to ``max_batch_size`` images (one batch at a time)."""

    family = "test-gpu"

    def __init__(self, latency: float, max_batch_size: int) -> None:
        self.latency, self.max_batch_size = latency, max_batch_size
        self._painter = ColourGenerator()

    def generate_batch(self, requests: list[GenerationRequest]) -> list[Image.Image]:
        if len(requests) > self.max_batch_size:
            raise ValueError(f"a batch of {len(requests)} images is over this GPU's {self.max_batch_size}")
        time.sleep(self.latency)
        return [self._painter.generate(r) for r in requests]

    def generate(self, request: GenerationRequest) -> Image.Image:
        return self.generate_batch([request])[0]


def _modelled_gpu(arg: str) -> ModelledGpu:
    options = {k: v[-1] for k, v in parse_qs(arg.partition("?")[2]).items()}
    return ModelledGpu(float(options.get("latency", 1.0)), int(options.get("batch", 8)))


register_generator("modelled-gpu", _modelled_gpu, replace=True)
