"""Prompting guides of the diffusers families: how each model's own documentation says to prompt it.

Each text restates, in our own words, the facts a model card or its pipeline's
documentation gives about prompting that family (the register it reads, how long a
prompt it takes in, what it does with negative prompts and guidance, how to ask for
text). ``DiffusersGenerator`` declares its family's guide (``prompting_guide``) and the
planner and the refiner are shown it, so a real chat model writes prompts the way
that model is documented to follow them. A family without documentation we could
restate has no guide; ``GemsContext.prompting_guide`` replaces or removes any of them.
"""

from __future__ import annotations

Z_IMAGE_TURBO = """\
Z-Image-Turbo is a distilled 6B diffusion transformer that makes an image in about 8 steps without \
classifier-free guidance: a negative prompt has no effect, so say what you want rather than what to avoid.
It follows long, detailed natural-language descriptions in English or Chinese: name every subject with \
its count, colour, material and position, then the setting, lighting and style.
It renders short text well: put the exact words in quotes and say where they appear.
When an image misses something, rewrite the description so that it comes first and is stated plainly."""

Z_IMAGE = """\
Z-Image is a 6B diffusion transformer run with classifier-free guidance (about 50 steps, guidance near 4), \
so a negative prompt removes what it names.
It follows long, detailed natural-language descriptions in English or Chinese: name every subject with \
its count, colour, material and position, then the setting, lighting and style.
It renders short text well: put the exact words in quotes and say where they appear."""

QWEN_IMAGE = """\
Qwen-Image is a 20B multimodal diffusion transformer with true classifier-free guidance: a negative \
prompt is used, and a single space is its neutral default.
It follows long, structured descriptions: subjects with their counts and attributes first, then layout, \
background and style. It is strongest at rendering text, English and Chinese, long or several lines: \
put each text in quotes and say where it goes and in what style.
Its documentation suggests ending the prompt with a quality phrase such as "Ultra HD, 4K, cinematic \
composition." and choosing the aspect ratio from its trained sizes (1328x1328, 1664x928, 928x1664)."""

FLUX_DEV = """\
FLUX.1-dev is a guidance-distilled 12B flow transformer: guidance is an input to the model (about 3.5) \
and it takes no negative prompt, so describe what should be there instead.
Its T5 encoder reads up to 512 tokens of natural language: write full sentences, not lists of tags, \
subjects first with their attributes and positions, then setting and style.
It renders text when the words are put in quotes."""

FLUX_SCHNELL = """\
FLUX.1-schnell is a timestep-distilled 12B flow transformer that makes an image in 1 to 4 steps \
without guidance: guidance and negative prompts have no effect.
Its T5 encoder reads up to 256 tokens: write plain sentences, subjects first with their attributes \
and positions, then setting and style. It renders short text put in quotes."""

SDXL = """\
SDXL reads prompts through two CLIP text encoders that keep only the first 77 tokens: put the subjects \
and their attributes first and keep the prompt short; comma-separated phrases work as well as sentences.
A negative prompt is effective against defects and unwanted content.
It often miscounts, mixes colours between objects and ignores spatial relations, and it renders text \
poorly: prefer few objects, each with its attributes right before it, and give it several seeds."""

SD35 = """\
Stable Diffusion 3.5 reads prompts with two CLIP encoders and a T5 encoder (up to 256 tokens by default): \
natural-language descriptions work, with the subjects and their attributes first.
It follows prompts and renders text better than SDXL: put the exact words in quotes.
A negative prompt is used (classifier-free guidance, around 4.5)."""

SDXL_INPAINT = """\
The SDXL inpainting model repaints the masked region of an image from the prompt and keeps the rest: \
the prompt describes the whole image as it should look, the content of the mask first. \
CLIP keeps only the first 77 tokens; a negative prompt is effective."""

FLUX_FILL = """\
FLUX.1-Fill repaints the masked region (or extends the canvas) from the prompt and keeps the rest: \
describe the whole image as it should look, in full sentences, the content of the mask first. \
It takes no negative prompt."""

FLUX_KONTEXT = """\
FLUX.1-Kontext edits an image from an instruction: say exactly what to change ("make the car red") \
and what to keep ("keep the background and the person's pose unchanged"). Name things by what they \
look like, not with pronouns. Put text to write or replace in quotes. It takes no negative prompt."""

QWEN_IMAGE_EDIT = """\
Qwen-Image-Edit edits an image from an instruction: say what to change and what to keep unchanged. \
It edits text in the image well: quote the old and the new text ("replace 'OPEN' with 'CLOSED'"). \
It needs a source image: it cannot make an image from text alone."""
