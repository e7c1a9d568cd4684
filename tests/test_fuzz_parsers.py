"""Property-based tests of the parsers a user's text reaches: the prompt grammar
round-trips every scene it can describe, and the spec strings, SKILL.md files,
``gems.toml`` files and run folders are read or refused with their own documented
error, whatever they hold (``test_fuzz_readers.py`` covers the line-level readers)."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gems_graph.config import ConfigFileError, read_config_file
from gems_graph.context import GemsContext
from gems_graph.eval.tasks import ResultLog
from gems_graph.models.registry import BackendLoadError, UnknownBackendError, chat_models, check_spec, generators, split_spec
from gems_graph.persistence.report import ReportError, load_run
from gems_graph.shapes.grammar import (
    COLORS,
    PLACES,
    RELATIONS,
    SHAPES,
    SIZES,
    ObjectSpec,
    Scene,
    ShapesGrammarError,
    describe,
    parse_prompt,
)
from gems_graph.skills.model import SkillValidationError
from gems_graph.skills.parser import parse_skill_file

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- the prompt grammar ---------------------------------------------------------------------

colors = st.none() | st.sampled_from(COLORS)
sizes = st.none() | st.sampled_from(SIZES)
single_objects = st.builds(ObjectSpec, st.sampled_from(SHAPES), colors, st.just(1), sizes)
groups = st.builds(ObjectSpec, st.sampled_from(SHAPES), colors, st.integers(1, 4), sizes)
placed_objects = st.builds(ObjectSpec, st.sampled_from(SHAPES), colors, st.just(1), sizes, st.sampled_from(sorted(PLACES)))


@st.composite
def scenes(draw: st.DrawFn) -> Scene:
    """Any scene the grammar describes: groups; or a relation between two single objects
    and groups after them; or the explicit register (placed objects among groups)."""
    kind = draw(st.sampled_from(["groups", "relation", "explicit"]))
    if kind == "relation":
        pair = (draw(single_objects), draw(single_objects))
        return Scene((*pair, *draw(st.lists(groups, max_size=2))), draw(st.sampled_from(RELATIONS)))
    if kind == "explicit":
        objects = draw(st.lists(placed_objects | groups, min_size=1, max_size=5))
        assume(any(o.place for o in objects))
        return Scene(tuple(objects))
    return Scene(tuple(draw(st.lists(groups, min_size=1, max_size=4))))


@FUZZ
@given(scenes())
def test_every_scene_reads_back_from_its_description(scene):
    assert parse_prompt(describe(scene)) == scene, describe(scene)


words = st.sampled_from(
    [*SHAPES, *(s + "s" for s in SHAPES), *COLORS, *SIZES, *RELATIONS, "at the", *PLACES, "a", "and", "two", "4", "photo of", "of"]
)


@FUZZ
@given(st.lists(words | st.text(alphabet=string.ascii_letters + string.digits + " ,.'-", max_size=8), max_size=14))
def test_any_prompt_parses_or_raises_the_grammar_error(parts):
    text = " ".join(parts)
    try:
        scene = parse_prompt(text)
    except ShapesGrammarError:
        return
    assert scene.objects and all(o.shape in SHAPES and 1 <= o.count for o in scene.objects)


# -- spec strings -----------------------------------------------------------------------------

spec_args = st.text(alphabet=string.ascii_letters + string.digits + ":/#?=&.-_ %", max_size=40)


@FUZZ
@given(
    st.sampled_from(["shapes", "diffusers", "http", "images-api", "openai-images", "openai", "openai-compatible", "nope", ""]),
    st.sampled_from([":", "", " : "]),
    spec_args,
)
def test_a_spec_string_is_accepted_or_refused_with_a_backend_error(kind, sep, arg):
    spec = kind + sep + arg
    for registry in (generators, chat_models):
        known = split_spec(spec.strip())[0] in registry.kinds()
        try:
            check_spec(spec, registry)
        except UnknownBackendError:
            assert not known, spec
        except BackendLoadError as exc:
            assert known and repr(spec.strip()) in str(exc), (spec, str(exc))  # a bad argument, named with its spec
        else:
            assert known, spec


# -- SKILL.md ---------------------------------------------------------------------------------

frontmatter_values = st.none() | st.booleans() | st.integers(-3, 300) | st.text(max_size=30) | st.lists(st.text(max_size=10), max_size=3)
frontmatter = st.dictionaries(
    st.sampled_from(["name", "description", "tools", "checks", "hints", "triggers", "license", "metadata", "other"]),
    frontmatter_values,
    max_size=6,
)


@st.composite
def skill_texts(draw: st.DrawFn) -> str:
    """A SKILL.md: frontmatter of the known keys with any values, or any text at all."""
    if draw(st.booleans()):
        return draw(st.text(max_size=300))
    meta = draw(frontmatter)
    lines = [f"{k}: {json.dumps(v)}" for k, v in meta.items()]
    return "---\n" + "\n".join(lines) + "\n---\n" + draw(st.text(max_size=80))


@FUZZ
@given(skill_texts())
def test_a_skill_file_parses_or_names_its_file_and_line(text):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "fuzzed-skill"
        folder.mkdir()
        (folder / "SKILL.md").write_text(text, encoding="utf-8")
        try:
            skill = parse_skill_file(folder)
        except SkillValidationError as exc:
            assert str(exc).startswith(str(folder / "SKILL.md")), str(exc)
            return
        assert skill.name and skill.description


# -- gems.toml --------------------------------------------------------------------------------

toml_values = (
    st.booleans()
    | st.integers(-(2**31), 2**31)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=string.printable, max_size=20)
    | st.lists(st.text(max_size=8), max_size=3)
    | st.lists(st.integers(), max_size=3)
)
context_keys = st.sampled_from([*GemsContext.__dataclass_fields__, "preset", "not_a_key"])


@FUZZ
@given(st.dictionaries(context_keys, toml_values, max_size=5) | st.text(max_size=200).map(lambda t: {"": t}))
def test_a_gems_toml_is_read_or_refused_with_a_config_file_error(doc):
    text = doc[""] if set(doc) == {""} else "\n".join(f"{k} = {json.dumps(v)}" for k, v in doc.items())  # JSON literals are TOML's
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gems.toml"
        path.write_text(text, encoding="utf-8")
        try:
            values = read_config_file(path)
        except ConfigFileError as exc:
            assert str(path) in str(exc), str(exc)
            return
        assert set(values) <= {*GemsContext.__dataclass_fields__, "preset"}


# -- run folders ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
run_keys = st.sampled_from(["run_id", "prompt", "status", "rounds", "checks", "best", "usage", "notes", "score", "x"])


@FUZZ
@given(st.dictionaries(run_keys, json_values, max_size=6).map(json.dumps).map(str.encode) | st.binary(max_size=200))
def test_a_run_folder_is_loaded_or_refused_with_a_report_error(raw):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "run.json").write_bytes(raw)
        try:
            run = load_run(tmp)
        except ReportError:
            return
        assert isinstance(run, dict)


@FUZZ
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["key", "error", "method"]), json_values | st.sampled_from(["a|1|0", "b|1|0"])).map(json.dumps)
        | json_values.map(json.dumps)
        | st.text(alphabet=string.printable, max_size=30),
        max_size=8,
    )
)
def test_an_eval_results_log_keeps_its_records_and_drops_every_other_line(lines):
    """``results.jsonl`` after a crash or a hand edit: a resumed eval reads the records
    (objects with a string ``key``, the last per key) and the file keeps only those."""
    with tempfile.TemporaryDirectory() as tmp:
        log = ResultLog(Path(tmp) / "results.jsonl")
        log.path.write_text("".join(line.replace("\n", " ") + "\n" for line in lines), encoding="utf-8")
        loaded = log.load()
        kept = [rec for line in log.path.read_text(encoding="utf-8").splitlines() for rec in [json.loads(line)]]
        assert all(isinstance(r, dict) and isinstance(r.get("key"), str) for r in kept)
        assert loaded == {r["key"]: r for r in kept}
