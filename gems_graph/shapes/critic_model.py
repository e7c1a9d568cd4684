"""The shapes world's VLM: a small learned visual question answerer (image + question -> P(yes)).

The loop's judge in the offline world. It is trained by this project
(``python -m gems_graph.shapes.train_critic``) on images of the shipped generator
labelled by the pixel checker, and it is never the pixel checker: it reads the
image through its own convolutions and attention and errs where a small VLM does
(counts and relations worst, measured by ``benchmarks/critic_accuracy.py``).

Two heads share one model:

* the **check** head answers a question in the world's check vocabulary (presence,
  colour, count, relation, or an object at a grid place: "Is there a red circle at
  the top left?"). The v3 vocabulary adds what GenEval2-style scenes ask: a size
  before the colour in any object phrase ("Is there a large red circle?", "Is the
  small square above the triangle?"), counts from one to five ("Is there exactly one
  circle?", "Are there exactly five small squares?") and the attribute atoms of
  ``gems_graph.shapes.atoms`` ("Is the circle red?", "Are the squares small?");
* the **request** head answers "does this image show the request?" for a whole
  prompt (``benchmarks/critic_accuracy.py`` reports its mean P(yes) on images the
  grader passes and fails). A question outside the vocabulary (a skill's check) is
  answered from the check head's answers to the request's own checks instead
  (``critic_p_yes``): that was chosen when the first training phase's request head
  had learnt nothing; whether the shipped head would judge better is not measured.

The question vocabulary grows only at its end (``QUESTION_VOCAB``: the v2 words in the
shipped weights' order, then "five"), and a model reads questions with the vocabulary
saved in its own config, so the shipped weights answer every question they knew as
before; ``train_critic --init-from`` grows an exported critic to the current vocabulary.

The image is encoded once (a conv stem to an 8x8 grid of tokens, then
self-attention), and each question attends to those tokens (a small transformer
decoder), so many questions about one image cost one image encoding.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from PIL import Image
from torch import nn

from gems_graph.models.cpu_threads import model_threads
from gems_graph.shapes.detect import Detection
from gems_graph.shapes.grammar import (
    COLORS,
    DIGITS,
    NUMBER_WORDS,
    PLACE_OF_CELL,
    PLACE_TOKEN,
    PLACES,
    RELATIONS,
    SHAPES,
    SIZES,
    ShapesGrammarError,
    parse_prompt,
)
from gems_graph.shapes.layout import CELLS
from gems_graph.shapes.questions import checks_for_scene
from gems_graph.shapes.render import CELL_CENTRES, SIZE
from gems_graph.shapes.text_encoder import PAD, TERSE_VOCAB, UNK, VOCAB, ShapesTokenizer

CHECK, REQUEST = "[check]", "[request]"
#: The v2 critic's words, in the shipped weights' order: the v2 world's words and the question words.
_V2_WORDS = [*TERSE_VOCAB, *SIZES, *(PLACE_TOKEN + p for p in PLACES), CHECK, REQUEST, "is", "there", "are", "exactly"]
#: The world's words plus the question words of its checks; words new since v2 ("five") come last,
#: so every old word keeps its index.
QUESTION_VOCAB = tuple(dict.fromkeys([*_V2_WORDS, *VOCAB]))
MAX_QUESTION = 40
WEIGHTS = Path(__file__).parent / "critic_weights"

_COLOR = "|".join(COLORS)
_SHAPE = "|".join(SHAPES)
_SIZE = "|".join(SIZES)
_NUMBER = "|".join([*NUMBER_WORDS, *DIGITS])
_OBJ = rf"(?:an? |the )?(?:(?:{_SIZE}) )?(?:(?:{_COLOR}) )?(?:{_SHAPE})s?"
_PLACE = r"(?:at (?:the )?(?:(?:top|bottom|upper|lower) ?)?(?:left|right|centre|center|middle)?(?: corner)?)"
#: Questions the check head is trained on (presence, at a place, exact count, relation,
#: attribute atom); anything else goes to the request head.
CHECK_QUESTION = re.compile(
    rf"^(?:is there {_OBJ}(?: {_PLACE})?"
    rf"|(?:is|are) there exactly (?:{_NUMBER}) (?:(?:{_SIZE}) )?(?:(?:{_COLOR}) )?(?:{_SHAPE})s?"
    rf"|is {_OBJ} (?:to the |on the )?(?:{'|'.join(RELATIONS)}) {_OBJ}"
    rf"|(?:is|are) (?:the )?(?:{_SHAPE})s? (?:{_COLOR}|{_SIZE}))\s*\??$"
)


def is_check_question(question: str) -> bool:
    """Is ``question`` phrased in the check vocabulary the check head knows?"""
    return bool(CHECK_QUESTION.match(" ".join(question.strip().lower().split())))


class ShapesCritic(ModelMixin, ConfigMixin):  # type: ignore[misc]  # diffusers types config_name str in ModelMixin, None in ConfigMixin
    """Image + question tokens -> a yes logit (see the module docstring)."""

    @register_to_config
    def __init__(
        self,
        vocab: tuple[str, ...] = QUESTION_VOCAB,
        max_length: int = MAX_QUESTION,
        width: int = 64,
        image_layers: int = 1,
        fusion_layers: int = 2,
        heads: int = 4,
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(5, 32, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(64, width, 3, stride=2, padding=1),
        )
        self.image_pos = nn.Parameter(torch.zeros(1, 64, width))
        enc = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.image_encoder = nn.TransformerEncoder(enc, image_layers, enable_nested_tensor=False)
        self.embed = nn.Embedding(len(vocab), width)
        self.text_pos = nn.Parameter(torch.zeros(1, max_length, width))
        dec = nn.TransformerDecoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.fusion = nn.TransformerDecoder(dec, fusion_layers)
        self.norm = nn.LayerNorm(width)
        self.check_head = nn.Linear(width, 1)
        self.request_head = nn.Linear(width, 1)
        nn.init.normal_(self.image_pos, std=0.02)
        nn.init.normal_(self.text_pos, std=0.02)

    @property
    def tokenizer(self) -> ShapesTokenizer:
        return ShapesTokenizer(list(self.config["vocab"]), self.config["max_length"])

    def encode_questions(self, questions: list[str], request: list[bool]) -> torch.Tensor:
        """Token ids: the head's mode token, then the question's words, padded to the longest."""
        tok = self.tokenizer
        index = tok.index
        rows = [
            ([index[REQUEST if r else CHECK]] + [index.get(w, index[UNK]) for w in tok.words(q)])[: tok.max_length]
            for q, r in zip(questions, request)
        ]
        longest = max((len(r) for r in rows), default=1)
        return torch.tensor([r + [index[PAD]] * (longest - len(r)) for r in rows], dtype=torch.long)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, 32, 32) in [-1, 1] -> (N, 64, width) image tokens."""
        n, _, h, w = pixels.shape
        ys = torch.linspace(-1, 1, h, device=pixels.device).view(1, 1, h, 1).expand(n, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=pixels.device).view(1, 1, 1, w).expand(n, 1, h, w)
        feats = self.stem(torch.cat([pixels, xs, ys], dim=1))  # coordinates: where things are matters
        tokens = feats.flatten(2).transpose(1, 2) + self.image_pos
        return self.image_encoder(tokens)

    def forward(self, image_tokens: torch.Tensor, question_ids: torch.Tensor) -> torch.Tensor:
        """Yes logits for questions about images already encoded (one row of tokens per question)."""
        pad = question_ids == self.config["vocab"].index(PAD)
        h = self.embed(question_ids) + self.text_pos[:, : question_ids.shape[1]]
        h = self.norm(self.fusion(h, image_tokens, tgt_key_padding_mask=pad))
        first = h[:, 0]
        is_request = (question_ids[:, 0] == self.config["vocab"].index(REQUEST)).unsqueeze(-1)
        return torch.where(is_request, self.request_head(first), self.check_head(first)).squeeze(-1)


def to_pixels(images: list[Image.Image]) -> torch.Tensor:
    """PIL images as the critic's input: (N, 3, 32, 32) in [-1, 1]."""
    arrays = [np.asarray(im.convert("RGB").resize((32, 32), Image.Resampling.BICUBIC), dtype=np.float32) for im in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 127.5 - 1.0


class CriticJudge:
    """The shipped critic, loaded once and shared by every chat model in the process."""

    def __init__(self, weights: Path = WEIGHTS):
        self.weights = weights
        self._model: ShapesCritic | None = None
        self._lock = threading.Lock()

    def model(self) -> ShapesCritic:
        with self._lock:
            if self._model is None:
                if not (self.weights / "config.json").is_file():
                    raise FileNotFoundError(
                        f"shapes critic weights not found in {self.weights}; train them with `python -m gems_graph.shapes.train_critic`"
                    )
                self._model = ShapesCritic.from_pretrained(self.weights, low_cpu_mem_usage=False).float().eval()
            return self._model

    def p_yes(self, image: Image.Image, questions: list[str], request: list[bool] | None = None) -> list[float]:
        """P(yes) for each question about one image (``request[i]``: ask the request head)."""
        model = self.model()
        request = request or [not is_check_question(q) for q in questions]
        with torch.no_grad(), self._lock, model_threads():
            tokens = model.encode_images(to_pixels([image]))
            ids = model.encode_questions(questions, request)
            logits = model(tokens.expand(len(questions), -1, -1), ids)
        return [float(p) for p in torch.sigmoid(logits)]


_JUDGE = CriticJudge()


def shipped_judge() -> CriticJudge:
    """The process-wide judge on the shipped weights (loaded on first use)."""
    return _JUDGE


def critic_p_yes(question: str, image: Image.Image, request: str = "") -> float:
    """The critic's P(yes) for one check.

    A question in its vocabulary goes to the check head. Any other question (a skill's
    check) is answered for the whole request, from the check head's answers to the
    request's own checks (the weakest decides, as with "all"); 0.5 when the request is
    not in the world's language either (see the module docstring for why not the
    request head)."""
    if is_check_question(question):
        return shipped_judge().p_yes(image, [question], [False])[0]
    try:
        checks = checks_for_scene(parse_prompt(request))
    except ShapesGrammarError:
        return 0.5
    return min(shipped_judge().p_yes(image, checks, [False] * len(checks)))


def critic_objects(image: Image.Image) -> list[Detection]:
    """What the critic sees: per grid cell, the object it is surest is there (P(yes) > 0.5).

    It asks "Is there a <colour> <shape> at the <place>?" for every colour, shape and
    place in one batch; the result is shaped like the pixel checker's detections (at
    the cell's centre, the cell as the box) so the refiner reads either the same way."""
    asked = [(shape, color, cell) for cell in CELLS for shape in SHAPES for color in COLORS]
    questions = [f"Is there a {color} {shape} at the {PLACE_OF_CELL[cell]}?" for shape, color, cell in asked]
    probs = shipped_judge().p_yes(image, questions, [False] * len(questions))
    best: dict[tuple[int, int], tuple[float, str, str]] = {}
    for (shape, color, cell), p in zip(asked, probs):
        if p > 0.5 and p > best.get(cell, (0.0, "", ""))[0]:
            best[cell] = (p, shape, color)
    out = []
    for (c, r), (p, shape, color) in best.items():
        box = (int(c * SIZE / 3), int(r * SIZE / 3), int(round((c + 1) * SIZE / 3)), int(round((r + 1) * SIZE / 3)))
        out.append(Detection(shape, color, CELL_CENTRES[c], CELL_CENTRES[r], area=40.0, confidence=round(p, 4), box=box))
    return out
