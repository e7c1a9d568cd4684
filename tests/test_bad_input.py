"""Bad input to ``gems run``: exit code 2, one line naming the problem, nothing written.

One table of cases. "Nothing written" means no checkpoint database, no run folder, no
memory folder: every file and folder under the test's temporary folder is the same
after the command as before it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli_first_contact import BACKENDS, gems

HOME = "home"  # $GEMS_HOME, under the test's folder


def _case(args, expect, env=None, setup=None):
    return {"args": args, "expect": expect, "env": env or {}, "setup": setup}


def _file(path: str):
    def make(root: Path) -> None:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x")

    return make


def _folder(path: str):
    return lambda root: (root / path).mkdir(parents=True)


def _broken_skill(root: Path) -> None:
    (root / "skills" / "broken").mkdir(parents=True)
    (root / "skills" / "broken" / "SKILL.md").write_text("---\nname: [oops\n---\nbody\n")


PROMPT = ["run", "a red square"]
CASES = {
    "seed above 2^64": _case([*PROMPT, *BACKENDS, "--seed", str(2**64 + 1)], "seed="),
    "seed negative": _case([*PROMPT, *BACKENDS, "--seed", "-1"], "seed="),
    "zero-width prompt": _case(["run", "\u200b\u200c\u200d\ufeff\u2060", *BACKENDS], "prompt is empty"),
    "--memory bogus": _case([*PROMPT, *BACKENDS, "--memory", "bogus"], "unknown memory spec 'bogus'"),
    "GEMS_MEMORY=bogus": _case([*PROMPT, *BACKENDS], "unknown memory spec 'bogus'", env={"GEMS_MEMORY": "bogus"}),
    "--guidance inf": _case([*PROMPT, *BACKENDS, "--guidance", "inf"], "guidance="),
    "--guidance nan": _case([*PROMPT, *BACKENDS, "--guidance", "nan"], "guidance="),
    "GEMS_GUIDANCE=inf": _case([*PROMPT, *BACKENDS], "guidance=", env={"GEMS_GUIDANCE": "inf"}),
    "--steps 100000": _case([*PROMPT, *BACKENDS, "--steps", "100000"], "steps="),
    "GEMS_STEPS=100000": _case([*PROMPT, *BACKENDS], "steps=", env={"GEMS_STEPS": "100000"}),
    "--width 0": _case([*PROMPT, *BACKENDS, "--width", "0"], "width="),
    "GEMS_HOME is a file": _case([*PROMPT, *BACKENDS], "is not a folder that can be written", setup=_file(HOME)),
    "--out is a file": _case([*PROMPT, *BACKENDS, "--out", "blocker"], "is not a folder that can be written", setup=_file("blocker")),
    "--out under a file": _case(
        [*PROMPT, *BACKENDS, "--out", "blocker/runs"], "is not a folder that can be written", setup=_file("blocker")
    ),
    "--checkpoint-db is a folder": _case([*PROMPT, *BACKENDS, "--checkpoint-db", "db"], "is a folder", setup=_folder("db")),
    "missing --skills-dir": _case([*PROMPT, *BACKENDS, "--skills-dir", "no-such-skills"], "no-such-skills"),
    "an invalid user skill": _case([*PROMPT, *BACKENDS, "--skills-dir", "skills"], "SKILL.md:2: bad YAML", setup=_broken_skill),
    "http: without a URL": _case([*PROMPT, "--generator", "http:", "--chat-model", "scripted:"], "URL"),
    "http: timeout=abc": _case([*PROMPT, "--generator", "http:http://127.0.0.1:9/gen#timeout=abc", "--chat-model", "scripted:"], "timeout"),
    "http: unknown option": _case(
        [*PROMPT, "--generator", "http:http://127.0.0.1:9/gen#nope=1", "--chat-model", "scripted:"], "unknown http generator option"
    ),
    "shapes: missing weights": _case([*PROMPT, "--generator", "shapes:/nonexistent", "--chat-model", "scripted:"], "/nonexistent"),
    "unknown chat spec": _case([*PROMPT, "--generator", "colour:", "--chat-model", "bogus:x"], "unknown chat model kind 'bogus'"),
    "unknown editor spec": _case(
        [*PROMPT, "--generator", "colour:", "--editor", "bogus:x", "--chat-model", "scripted:"], "unknown generator kind 'bogus'"
    ),
    "unknown critic spec": _case([*PROMPT, *BACKENDS, "--critic-model", "bogus"], "unknown chat model kind 'bogus'"),
    "--resume of an unknown id": _case(["run", "--resume", "nosuchrun"], "no run with id 'nosuchrun'"),
}


def _snapshot(root: Path) -> dict[str, int | None]:
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else None) for p in root.rglob("*")}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, case):
    if case["setup"]:
        case["setup"](tmp_path)
    before = _snapshot(tmp_path)
    res = gems(case["args"], tmp_path, {"GEMS_HOME": str(tmp_path / HOME), **case["env"]}, timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert case["expect"] in lines[0], lines[0]
    assert _snapshot(tmp_path) == before  # no checkpoints.sqlite, no run folder, no memory folder
