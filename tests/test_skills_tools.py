"""Registered skill tools and the layout_objects tool."""

from __future__ import annotations

import pytest
from langchain_core.tools import BaseTool

from gems_graph.skills import get_skill_tool, register_skill_tool, skill_tool_names
from gems_graph.skills.layout import layout_objects
from gems_graph.skills.tools import unregister_skill_tool


def test_register_and_use_in_a_skill(tmp_path):
    @register_skill_tool("shout_test")
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    try:
        assert isinstance(shout, BaseTool) and "shout_test" in skill_tool_names()
        assert get_skill_tool("shout_test").invoke({"text": "hi"}) == "HI"
        with pytest.raises(ValueError, match="already registered"):
            register_skill_tool("shout_test")(lambda text: text)
        from gems_graph.skills import parse_skill_file

        d = tmp_path / "loud"
        d.mkdir()
        (d / "SKILL.md").write_text("---\nname: loud\ndescription: d\nmetadata:\n  tools: [shout_test]\n---\nbody\n")
        assert parse_skill_file(d).tools == ("shout_test",)
    finally:
        unregister_skill_tool("shout_test")
    with pytest.raises(KeyError, match="no skill tool"):
        get_skill_tool("shout_test")


def test_invalid_tool_name():
    with pytest.raises(ValueError, match="invalid tool name"):
        register_skill_tool("bad name!")(lambda: None)


def R(s, rel, o):
    return {"subject": s, "relation": rel, "object": o}


def test_layout_left_right_and_vertical():
    out = layout_objects(["red cube", "blue ball", "lamp"], [R("red cube", "left of", "blue ball"), R("lamp", "above", "blue ball")])
    assert "- red cube: left half (" in out
    assert "- blue ball: right half, lower half" in out
    assert "- lamp: right half, upper half" in out
    assert out.splitlines()[-1].startswith("Prompt sentence: red cube in the left half;")


def test_layout_three_in_a_row_and_free_objects():
    out = layout_objects(["cat", "dog", "tree"])
    assert "cat: left third" in out and "dog: center" in out and "tree: right third" in out
    chain = layout_objects(["a", "b", "c"], [R("a", "left of", "b"), R("c", "right of", "b")])
    assert "a: left third" in chain and "b: center" in chain and "c: right third" in chain


def test_layout_depth_and_contradictions():
    out = layout_objects(["x", "y"], [R("x", "left of", "y"), R("y", "left of", "x"), R("x", "in front of", "y")])
    assert "Dropped contradictory relations: y left of x" in out
    assert "x: left half, foreground" in out and "y: right half, background" in out


def test_layout_objects_only_in_relations_and_empty():
    assert "moon" in layout_objects([], [R("moon", "above", "sea")])
    assert "nothing to lay out" in layout_objects([])


def test_layout_many_columns():
    names = [f"o{i}" for i in range(5)]
    out = layout_objects(names, [R(names[i], "left of", names[i + 1]) for i in range(4)])
    assert "o0: position 1 of 5" in out
