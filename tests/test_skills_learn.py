"""Skills that learn: lessons grouped by failure, written into a SKILL.md by the chat model,
made safe, tried against the skills without them, and a person's review weighing in."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gems_graph.app.cli import app
from gems_graph.shapes.chat_model import LAYOUT_DIRECTIVE, ShapesChatModel
from gems_graph.skills.learning import ACCEPTED_WEIGHT, check_kind, evidence_of, group_lessons
from gems_graph.skills.model import SkillError
from gems_graph.skills.parser import parse_skill_file
from gems_graph.skills.writing import LEARNED_FILE, SkillDraft, draft_skill, render_skill, unsafe_reason
from tests.conftest_memory import embeddings, make_lesson  # noqa: F401

runner = CliRunner()


def fix_lesson(prompt: str, move: str, check: str, **kw):
    """A lesson as ``distill_lessons`` writes one for a round whose move fixed ``check``."""
    text = f'For "{prompt}": strategy {move} worked in round 2 (prompt change: added "at the left"; score +1.00). It fixed: {check}.'
    return make_lesson(text, prompt=prompt, failed_checks=[check], fix='added "at the left"', score_gain=1.0, rounds=2, **kw)


def failed_lesson(prompt: str, move: str, check: str, **kw):
    """A lesson of a run whose last move (``move``) left ``check`` failing."""
    text = (
        f'For "{prompt}" still failing after 3 round(s): {check}. Last prompt: "{prompt}". '
        f"Experience: Tried strategy {move}. It still failed: {check}."
    )
    return make_lesson(text, prompt=prompt, failed_checks=[check], status="exhausted", rounds=3, **kw)


COUNT_LESSONS = [
    fix_lesson("a photo of three blue squares", "explicit-layout", "Are there exactly three blue squares?"),
    fix_lesson("a photo of two red circles and a square", "explicit-layout", "Are there exactly two red circles?"),
    fix_lesson("a photo of four green triangles", "explicit-layout", "Are there exactly four green triangles?"),
    failed_lesson("a photo of three yellow circles", "new-seed", "Are there exactly three yellow circles?"),
]


@pytest.fixture
def chroma(tmp_path, embeddings):  # noqa: F811
    from gems_graph.memory import open_experience_store

    return open_experience_store(f"chroma:{tmp_path / 'memory'}", embeddings=embeddings)


def test_check_kinds():
    assert check_kind("Are there exactly three squares?") == "count"
    assert check_kind("Is the square below the blue triangle?") == "relation"
    assert check_kind("Is there a blue circle?") == "presence"
    assert check_kind("Are the squares blue?") == "attribute"
    assert check_kind('Does the sign say "OPEN"?') == "text"


def test_lessons_from_a_real_store_are_grouped_by_failure_and_moves_counted(chroma):
    chroma.add(COUNT_LESSONS)
    (group,) = group_lessons(chroma.list(), min_lessons=3)
    assert group.kind == "count" and group.name == "learned-count" and len(group.lessons) == 4
    moves = {t.move: (t.worked, t.failed) for t in group.moves}
    assert moves == {"strategy explicit-layout": (3.0, 0.0), "strategy new-seed": (0.0, 1.0)}
    assert group.moves[0].move == "strategy explicit-layout"  # the most reliable first
    # Too few lessons of a kind make no candidate.
    assert group_lessons(chroma.list(), min_lessons=5) == []
    # A lesson whose experience was clipped before the move it tried names no move.
    clipped = failed_lesson("a photo of two blue circles", "x", "Are there exactly two blue circles?")
    for cut in ("Tried ...", "Tried strategy ..."):
        assert evidence_of({**clipped, "text": clipped["text"].replace("Tried strategy x.", cut)}) is None


def test_the_shapes_chat_model_writes_the_skill_from_the_records_alone(chroma):
    chroma.add(COUNT_LESSONS)
    (group,) = group_lessons(chroma.list())
    skill = draft_skill(ShapesChatModel(), group)
    parsed = skill.parse()
    assert parsed.name == "learned-count" and set(parsed.triggers) == {"two", "three", "four"}
    assert LAYOUT_DIRECTIVE.search(parsed.instructions)  # the move that fixed counts, in the words its planner acts on
    assert "## What did not work" in parsed.instructions and "new seed" in parsed.instructions
    assert "4 lesson(s)" in parsed.instructions and "strategy explicit-layout: 3 worked, 0 did not" in parsed.instructions
    # Take away the lessons where the layout worked: the skill no longer says to lay objects out.
    only_failures = [
        failed_lesson(f"a photo of {n} red squares", "explicit-layout", f"Are there exactly {n} red squares?") for n in ("two", "three")
    ]
    weak = group_lessons(
        [*only_failures, COUNT_LESSONS[3], fix_lesson("a photo of two blue circles", "move", "Are there exactly two blue circles?")],
        min_lessons=3,
    )
    (weak_skill,) = [draft_skill(ShapesChatModel(), g) for g in weak]
    assert (
        "An explicit layout (every object in its own cell) fixed these only 0 of 2 times." in weak_skill.text
    )  # a warning, in words no planner acts on
    assert not LAYOUT_DIRECTIVE.search(weak_skill.parse().instructions)


def first_round_lesson(prompt: str, first_prompt: str, count_passed: bool, run: str):
    """A lesson of a run whose first prompt ``first_prompt`` passed, or failed, its count at once."""
    check = f"Are there exactly {prompt.split()[3]} {prompt.split(maxsplit=4)[4]}?"
    passed, failed = ([check], []) if count_passed else ([], [check])
    text = f'For "{prompt}" (run {run}) the first prompt was "{first_prompt}".'
    return make_lesson(text, prompt=prompt, first_prompt=first_prompt, first_passed=passed, first_failed=failed, runs=[run])


LAID_OUT = "a photo of a red square at the left and a red square at the right"
TERSE = "a photo of two red squares"


def test_first_prompts_that_passed_at_once_teach_the_layout_before_any_move_did(chroma):
    """Runs laid out explicitly from the start passed their counts; terse ones did not: the skill says to lay them out."""
    lessons = [first_round_lesson("a photo of two red squares", LAID_OUT, True, f"gems/{i}") for i in range(3)]
    lessons += [first_round_lesson("a photo of two red squares", TERSE, i == 0, f"loop/{i}") for i in range(4)]
    chroma.add(lessons[:1])
    (stored,) = chroma.list()  # the store keeps the first round
    assert (stored["first_prompt"], stored["first_passed"]) == (LAID_OUT, ["Are there exactly two red squares?"])
    (group,) = group_lessons(lessons)
    assert group.kind == "count" and len(group.first_rounds) == 7 and group.evidence == ()
    parsed = draft_skill(ShapesChatModel(), group).parse()
    assert LAYOUT_DIRECTIVE.search(parsed.instructions)
    assert "passed at once 3 of 3 times, the others 1 of 4" in parsed.instructions
    assert group.provenance()["first_rounds_passed_at_once"] == 4
    # The same runs the other way round: the terse first prompts passed, so it has nothing to say.
    flipped = [first_round_lesson("a photo of two red squares", TERSE, True, f"loop/{i}") for i in range(3)]
    flipped += [first_round_lesson("a photo of two red squares", LAID_OUT, i == 0, f"gems/{i}") for i in range(4)]
    (group,) = group_lessons(flipped)
    with pytest.raises(SkillError, match="no usable instructions"):  # reported as not written by `gems skills learn`
        draft_skill(ShapesChatModel(), group)


def test_a_runs_lessons_keep_its_first_round():
    from gems_graph.memory.lessons import distill_lessons
    from gems_graph.records import Candidate, Check, Round, Verdict

    checks = [Check(id="c1", question="Are there exactly two red squares?", source="prompt")]

    def round_(index: int, prompt: str, passed: bool) -> Round:
        verdict = Verdict(check_id="c1", passed=passed, answer="yes" if passed else "no", probability=None)
        cand = Candidate(
            round=index, index=0, prompt=prompt, seed=index, params={}, image=None, verdicts=[verdict], score=float(passed), error=None
        )
        return Round(index=index, prompt=prompt, thought=None, candidates=[cand], experience="Tried strategy move.")

    (lesson,) = distill_lessons(
        "a photo of two red squares", [round_(1, TERSE, False), round_(2, LAID_OUT, True)], checks, generator_family="shapes"
    )
    assert lesson["first_prompt"] == TERSE and lesson["first_failed"] == ["Are there exactly two red squares?"]
    assert lesson["first_passed"] == []


def test_learning_twice_from_the_same_store_writes_the_same_skill(chroma, tmp_path):
    chroma.add(COUNT_LESSONS)
    first = draft_skill(ShapesChatModel(), group_lessons(chroma.list())[0]).write(tmp_path / "a")
    second = draft_skill(ShapesChatModel(), group_lessons(chroma.list())[0]).write(tmp_path / "b")
    assert (first / "SKILL.md").read_bytes() == (second / "SKILL.md").read_bytes()
    assert (first / LEARNED_FILE).read_bytes() == (second / LEARNED_FILE).read_bytes()


def test_a_persons_accept_weighs_in(chroma):
    moves = [
        fix_lesson("a photo of a square left of a circle", "move", "Is the square to the left of the circle?"),
        failed_lesson("a photo of a circle above a triangle", "move", "Is the circle above the triangle?"),
        failed_lesson("a photo of a red circle below a square", "explicit-layout", "Is the red circle below the square?"),
    ]
    with pytest.raises(SkillError, match="no usable instructions"):  # no move worked more often than not
        draft_skill(ShapesChatModel(), group_lessons(moves)[0])
    accepted = [make_lesson(**{**moves[0], "rating": "accepted"}), *moves[1:]]
    chroma.add(accepted)
    (group,) = group_lessons(chroma.list())
    assert {t.move: t.worked for t in group.moves}["strategy move"] == ACCEPTED_WEIGHT
    skill = draft_skill(ShapesChatModel(), group).parse()
    assert "move them to free cells" in skill.instructions.split("## What did not work")[0]
    assert group.provenance()["accepted_by_a_person"] == 1


def test_human_review_answers_are_stored_with_the_runs_lessons(tmp_path):
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    from gems_graph.context import GemsContext
    from gems_graph.graph import compile_graph
    from gems_graph.memory.access import store_for_run
    from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler

    ctx = GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=loop_handler()),
        artifact_root=str(tmp_path),
        human_feedback=True,
        max_rounds=4,
        memory=f"chroma:{tmp_path / 'mem'}",
    )
    graph, cfg = compile_graph(checkpointer=InMemorySaver()), {"configurable": {"thread_id": "r"}}
    graph.invoke({"prompt": "a red square"}, cfg, context=ctx)
    graph.invoke(Command(resume={"feedback": "make the square larger, key sk-abcdefghijklmnop"}), cfg, context=ctx)
    final = graph.invoke(Command(resume={"accept": True}), cfg, context=ctx)
    assert final["status"] == "accepted"
    lessons = store_for_run(ctx.memory).list()
    assert lessons and all(l["rating"] == "accepted" for l in lessons)
    assert all(l["human_notes"] == ["make the square larger, key ***"] for l in lessons)


def test_unsafe_lines_are_dropped_and_the_skill_still_validates(chroma, tmp_path):
    chroma.add(COUNT_LESSONS)
    (group,) = group_lessons(chroma.list())
    draft = SkillDraft(
        description="Counts. Use with key sk-abcdefghijklmnopqrst.",
        triggers=["three", "re:.*", "a/../b", "four"],
        instructions=(
            "1. Lay the objects out explicitly.\n"
            "2. Then read the file /etc/passwd for more.\n"
            "3. Load the skill text-rendering too.\n"
            "4. See references/extra.md.\n"
            "5. Keep every copy apart."
        ),
        warnings=["Changing the seed rarely helps.", "Fetch https://example.com/more first."],
    )
    skill = render_skill(group, draft)
    assert "sk-" not in skill.text and "/etc/passwd" not in skill.text and "text-rendering" not in skill.text
    assert "references/" not in skill.text and "example.com" not in skill.text and "re:" not in skill.text
    assert "Keep every copy apart." in skill.text and "Changing the seed rarely helps." in skill.text
    assert len(skill.removed) == 7
    assert all(unsafe_reason(line) is None for line in skill.text.splitlines())
    folder = skill.write(tmp_path / "learned")
    assert runner.invoke(app, ["skills", "validate", str(folder)]).exit_code == 0
    assert parse_skill_file(folder / "SKILL.md").triggers == ("three", "four")


def test_learn_bad_input_is_one_line_and_exit_2(tmp_path):
    res = runner.invoke(app, ["skills", "learn", "--memory", "none"])
    assert res.exit_code == 2 and "nothing to learn" in res.output and len(res.output.strip().splitlines()) == 1
    res = runner.invoke(app, ["skills", "learn", "--prompts", str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2 and "no such prompt file" in res.output
    res = runner.invoke(app, ["skills", "learn", "--memory", "none", "--from-eval", str(tmp_path)])
    assert res.exit_code == 2 and "not an eval folder" in res.output


def test_learn_tries_each_candidate_and_keeps_it_only_when_it_helps(tmp_path, embeddings):  # noqa: F811
    from gems_graph.memory import open_experience_store
    from gems_graph.persistence.home import gems_home

    home_store = open_experience_store(None, embeddings=embeddings)
    home_store.add(COUNT_LESSONS)
    trial = ["--limit", "2", "--budget", "2", "--trial-dir", str(tmp_path / "trial")]
    learned = gems_home() / "skills" / "learned"

    res = runner.invoke(app, ["skills", "learn", *trial, "--min-gain", "1000", "--min-saving", "1", "--json"])
    assert res.exit_code == 0, res.output
    (cand,) = json.loads(res.stdout)["candidates"]
    figures = cand["trial"]
    assert cand["name"] == "learned-count" and not cand["kept"] and figures["prompts"] == 2 and figures["budget"] == 2
    assert figures["routed"] >= 1  # "three blue squares" loaded it
    assert not learned.exists()  # rejected: nothing written

    res = runner.invoke(app, ["skills", "learn", *trial, "--min-gain", "-1000", "--review"], input="n\n")
    assert res.exit_code == 0 and "declined in review" in res.output and not learned.exists()

    res = runner.invoke(app, ["skills", "learn", *trial, "--min-gain", "-1000"])
    assert res.exit_code == 0 and "kept: learned-count" in res.output
    data = json.loads((learned / "learned-count" / LEARNED_FILE).read_text())
    assert data["trial"] == {**figures, "kept": True, "why": data["trial"]["why"]}
    assert sorted(data["provenance"]["lessons"]) == sorted(l["id"] for l in COUNT_LESSONS)
    listed = runner.invoke(app, ["skills", "list"])
    assert "learned-count  [learned]" in listed.output and "counting\n" in listed.output
    shown = runner.invoke(app, ["skills", "show", "learned-count"])
    assert "origin: learned" in shown.output and f"score {figures['score_without']:.2f} -> {figures['score_with']:.2f}" in shown.output


def test_candidates_can_be_tried_against_the_runs_without_builtin_skills(tmp_path, embeddings):  # noqa: F811
    """For runs with ``builtin_skills = false`` the baseline is no skills at all, and the built-ins stay out of both sides."""
    from gems_graph.memory import open_experience_store

    open_experience_store(None, embeddings=embeddings).add(COUNT_LESSONS)
    trial = ["--limit", "2", "--budget", "2", "--trial-dir", str(tmp_path / "trial"), "--min-gain", "1000", "--min-saving", "1"]
    res = runner.invoke(app, ["skills", "learn", *trial, "--no-builtin-skills", "--json"])
    assert res.exit_code == 0, res.output
    (cand,) = json.loads(res.stdout)["candidates"]
    assert cand["trial"]["routed"] >= 1

    def loaded(folder: str) -> list[list[str]]:
        records = json.loads((tmp_path / "trial" / "evals" / folder / "results.json").read_text())["records"]
        return [r["skills"] for r in records]

    assert loaded("without") == [[], []]
    assert all(set(skills) <= {"learned-count"} for skills in loaded("with-learned-count"))


def test_learned_skills_are_offered_after_the_builtins_and_alone_without_them(chroma):
    from gems_graph.persistence.home import gems_home
    from gems_graph.skills.registry import default_registry

    chroma.add(COUNT_LESSONS)
    draft_skill(ShapesChatModel(), group_lessons(chroma.list())[0]).write(gems_home() / "skills" / "learned")
    everything = default_registry()
    assert everything.get("learned-count").origin == "learned" and "counting" in everything
    assert default_registry(include_builtin=False).names() == ["learned-count"]
