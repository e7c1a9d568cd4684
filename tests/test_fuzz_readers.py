"""Property-based fuzz of the readers and parsers that take text from outside: whatever
they are given, they answer or raise their own one-line error, never anything else."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gems_graph.errors import redact, redact_values
from gems_graph.memory.lesson_file import parse_line
from gems_graph.memory.store import normalize_lesson
from gems_graph.models.llm import read_verdict
from gems_graph.persistence.run_record import ShapeError, check_shape
from gems_graph.skills.safe_yaml import YamlLimitError, load_limited
from gems_graph.text import word_opcodes

FUZZ = settings(max_examples=150, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(st.text(max_size=60))
def test_read_verdict_answers_only_a_clear_yes_or_no(text):
    verdict = read_verdict(text)
    assert verdict in (True, False, None)
    words = "".join(c if c.isalpha() else " " for c in text.lower()).split()
    if verdict is not None:
        assert words and words[0] in ("yes", "yeah", "yep", "true", "correct", "no", "nope", "false", "incorrect")


@FUZZ
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5), st.sampled_from(["Bearer abc\\", 'Bearer "x"', "sk-" + "a" * 12]))
def test_redacted_documents_stay_json_and_hold_no_token(doc, token):
    doc = {**doc, "error": f'x "Authorization: {token}" y'}
    text = json.dumps(redact_values(doc))
    assert json.loads(text)["error"].startswith('x "Authorization: ')
    assert "abc" not in json.loads(text)["error"] and "aaaaaaaaaaaa" not in text
    json.loads(redact(json.dumps(doc)))  # plain-text redaction of a JSON text keeps it JSON too


def _redact_every_string(value, secrets):
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {_redact_every_string(k, secrets): _redact_every_string(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_every_string(v, secrets) for v in value]
    return value


SECRET_KEY = 'k3y"\\é-0123'


@FUZZ
@given(
    json_values,
    st.sampled_from(["", "Bearer abc", "SK-" + "b" * 10, "postgresql://u:pw@h/db", "PassWord=hunter2", SECRET_KEY]),
    st.booleans(),
)
def test_redact_values_changes_what_redacting_every_string_changes(doc, planted, as_key):
    # redact_values skips a document after one test of its JSON text: the test must never
    # miss a string that redacting it one by one would change (a key with quotes, any case).
    doc = {f"k{planted}" if as_key else "k": [doc, f"x {planted} y"]}
    assert redact_values(doc, [SECRET_KEY]) == _redact_every_string(doc, [SECRET_KEY])


@FUZZ
@given(st.text(alphabet=string.printable, max_size=300))
def test_yaml_frontmatter_loads_or_raises_a_yaml_error(src):
    import yaml

    try:
        load_limited(src)
    except (YamlLimitError, yaml.YAMLError):
        pass


@FUZZ
@given(st.integers(1, 60), st.integers(1, 12))
def test_yaml_nesting_and_aliases_are_bounded(depth, fanout):
    import yaml

    nested = "[" * depth + "]" * depth
    bomb = "\n".join(["- &a0 [x]"] + [f"- &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]" for i in range(1, 8)])
    for src in (nested, bomb):
        try:
            load_limited(src)
        except YamlLimitError:
            pass
        except yaml.YAMLError:
            pytest.fail("a limit error was expected, not a parse error")


@FUZZ
@given(json_values)
def test_a_lessons_line_parses_or_names_what_is_wrong(value):
    try:
        record = parse_line(json.dumps(value))
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        lesson = normalize_lesson(record)
        assert lesson["text"] and isinstance(lesson["skills"], list) and lesson["rounds"] >= 0


@FUZZ
@given(st.text(max_size=200))
def test_any_lessons_line_text_parses_or_names_what_is_wrong(line):
    try:
        parse_line(line)
    except ValueError:
        pass


@FUZZ
@given(json_values)
def test_a_run_json_of_any_shape_is_checked_or_named(value):
    try:
        check_shape(value)
    except ShapeError as exc:
        assert "expected" in str(exc)


@FUZZ
@given(st.lists(st.sampled_from("abcde"), max_size=40), st.lists(st.sampled_from("abcde"), max_size=40), st.integers(0, 10))
def test_the_bounded_word_diff_rebuilds_the_new_text(a, b, cap):
    out: list[str] = []
    for op, i1, i2, j1, j2 in word_opcodes(a, b, max_words=cap):
        if op == "equal":
            assert a[i1:i2] == b[j1:j2]
        out += b[j1:j2]
    assert out == b
