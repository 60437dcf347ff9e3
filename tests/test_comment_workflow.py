"""comment.yml's script, run with bash against a fake `gh` that keeps a PR's comments in a JSON file:
one comment per plan part, updated in place by its marker as the plan grows and shrinks, stale parts
deleted, other comments (people's, another project's plan) untouched.

Only `gh` is faked (GitHub cannot be reached here); the script, bash, jq and awk are the real ones.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ftops.engine.model import ModelAction, ModelChange, Plan, PlanSummary
from ftops.render import plan_markdown_parts

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / "examples" / "github-actions" / "comment.yml"

FAKE_GH = r'''
import json, os, subprocess, sys
db = os.environ["FAKE_GH_DB"]
comments = json.load(open(db))
args = sys.argv[1:]
assert args[0] == "api", args
method, path, jq, body = "GET", None, None, None
i = 1
while i < len(args):
    a = args[i]
    if a == "--method": method = args[i + 1]; i += 2
    elif a == "--jq": jq = args[i + 1]; i += 2
    elif a == "--input": body = json.load(open(args[i + 1]))["body"]; i += 2
    elif a == "--paginate": i += 1
    else: path = a; i += 1
parts = path.split("/")
if method == "GET":
    out = subprocess.run(["jq", "-r", jq], input=json.dumps(comments), capture_output=True, text=True, check=True)
    sys.stdout.write(out.stdout)
elif method == "POST":
    new = {"id": max([c["id"] for c in comments] + [100]) + 1, "body": body}
    comments.append(new)
    print(json.dumps(new))
elif method == "PATCH":
    (c,) = [c for c in comments if c["id"] == int(parts[-1])]
    c["body"] = body
    print(json.dumps(c))
elif method == "DELETE":
    comments[:] = [c for c in comments if c["id"] != int(parts[-1])]
json.dump(comments, open(db, "w"))
'''


def _script() -> str:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["comment"]["steps"]
    (run,) = [s["run"] for s in steps if "run" in s]
    return str(run)


def _plan(n: int, project: str = "support") -> Plan:
    models = [ModelChange(name=f"model-{i:04d}", action=ModelAction.CREATE, reason="create_new_model",
                          attributes={"base_model": "gpt-4o-mini-2024-07-18", "training_file": "sha256:" + "c" * 64,
                                      "suffix": f"model-{i:04d}", "seed": i}) for i in range(n)]
    return Plan(project=project, provider="openai", endpoint="https://api.openai.com/v1", state_lineage="l",
                state_serial=1, models=models, summary=PlanSummary(create=n))


@pytest.fixture
def runner(tmp_path: Path):  # type: ignore[no-untyped-def]
    if not (shutil.which("bash") and shutil.which("jq") and shutil.which("awk")):
        pytest.skip("needs bash, jq and awk (as on GitHub's ubuntu runners)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(f"#!{sys.executable}\n{FAKE_GH}")
    gh.chmod(0o755)
    db = tmp_path / "comments.json"
    db.write_text(json.dumps([{"id": 1, "body": "LGTM"},
                              {"id": 2, "body": plan_markdown_parts(_plan(1, "other"))[0]}]))
    script = _script()

    def run(parts: list[str]) -> list[dict[str, object]]:
        work = tmp_path / "work"
        shutil.rmtree(work, ignore_errors=True)
        (work / "plan-md").mkdir(parents=True)
        (work / "pr-number.txt").write_text("7\n")
        for i, part in enumerate(parts, 1):
            (work / "plan-md" / f"plan-{i}.md").write_text(part, encoding="utf-8")
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_GH_DB": str(db),
               "REPO": "acme/models", "GH_TOKEN": "x"}
        r = subprocess.run(["bash", "-e", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        return json.loads(db.read_text())  # type: ignore[no-any-return]

    return run


def test_one_comment_per_part_updated_in_place(runner) -> None:  # type: ignore[no-untyped-def]
    long = plan_markdown_parts(_plan(700))
    assert len(long) >= 3
    after = runner(long)
    ours = [c for c in after if c["id"] > 2]
    assert [c["body"] for c in ours] == long
    ids = [c["id"] for c in ours]

    shorter = plan_markdown_parts(_plan(400))
    assert 2 <= len(shorter) < len(long)
    after = runner(shorter)
    assert [c["id"] for c in after] == [1, 2, *ids[: len(shorter)]]  # updated in place; the extra part deleted
    assert [c["body"] for c in after[2:]] == shorter

    single = plan_markdown_parts(_plan(2))
    assert len(single) == 1 and single[0].startswith("<!-- ftops-plan:support -->")
    after = runner(single)
    assert [c["id"] for c in after] == [1, 2, ids[0]]
    assert after[2]["body"] == single[0]
    assert after[0]["body"] == "LGTM" and after[1]["body"].startswith("<!-- ftops-plan:other -->")

    after = runner(plan_markdown_parts(_plan(700)))  # grows again: part 1 in place, the others new
    assert after[2]["id"] == ids[0] and len(after) == 2 + len(long)
