"""Hostile input that used to end in `ftops: internal error` (or worse, be accepted): issue 10,
items 6 (non-finite numbers), 10 (inputs without a diagnostic) and 16 (messages).

Every case runs `plan` and `apply --auto-approve` against a served sandbox that counts requests:
each must exit 1 with its diagnostic code and location, print no traceback and no "internal
error", and send nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.harness import API_KEY, Served, run_cli, served_sandbox
from tests.reliability.test_bad_input import TRAIN, make, refused, with_training

CHAT = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_sandbox(tmp_path_factory.mktemp("sandbox") / "sandbox.db") as s:
        yield s


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)


def _edit(root: Path, old: str, new: str) -> None:
    text = (root / "ftops.yaml").read_text()
    assert old in text, old
    (root / "ftops.yaml").write_text(text.replace(old, new, 1))


# ---------------------------------------------------------------------- item 6: non-finite numbers

# name: (old, new, code, where)
NON_FINITE: dict[str, tuple[str, str, str, str]] = {
    "lr_inf": ("{n_epochs: 2}", "{learning_rate_multiplier: .inf}", "config.non_finite_number", "ftops.yaml:11:49"),
    "lr_nan": ("{n_epochs: 2}", "{learning_rate_multiplier: .nan}", "config.non_finite_number", "ftops.yaml:11:49"),
    "timeout_inf": ("  type: openai\n", "  type: openai\n  timeout: .inf\n", "config.non_finite_number",
                    "ftops.yaml:5:12"),
    "retry_wait_neg_inf": ("  type: openai\n", "  type: openai\n  max_retry_wait: -.inf\n",
                           "config.non_finite_number", "ftops.yaml:5:19"),
    "pricing_inf": ("models:\n", "pricing: {gpt-4o-mini: .inf}\nmodels:\n", "config.non_finite_number",
                    "ftops.yaml:6:24"),
    "vars_nan": ("models:\n", "vars: {x: .NaN}\nmodels:\n", "config.non_finite_number", "ftops.yaml:6:11"),
    "inf_in_a_free_form_field": ("    seed: 1\n", "    seed: 1\n    response_format: {x: .inf}\n",
                              "config.non_finite_number", "ftops.yaml:14:26"),
    "pricing_huge": ("models:\n", "pricing: {gpt-4o-mini: 1.0e+308}\nmodels:\n", "config.out_of_range",
                     "ftops.yaml:6:24"),
}


@pytest.mark.parametrize("case", sorted(NON_FINITE))
def test_non_finite_numbers_in_config_are_refused(case: str, tmp_path: Path, served: Served,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    old, new, code, where = NON_FINITE[case]
    root = make(tmp_path, served)
    _edit(root, old, new)
    refused(root, served, capsys, code, where)


@pytest.mark.parametrize("flag", [("--max-cost", "nan"), ("--max-cost", "inf"), ("--max-cost", "-1"),
                                  ("--max-wait", "nan"), ("--lock-timeout", "-inf")])
def test_non_finite_cli_flags_are_refused(flag: tuple[str, str], tmp_path: Path, served: Served,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = make(tmp_path, served)
    before = served.requests
    code, out, err = run_cli(root, capsys, "apply", "--auto-approve", *flag)
    assert code == 1, out + err
    assert flag[0] in err and ("finite" in err or "below" in err), err
    assert served.requests == before
    assert not (root / ".ftops" / "state.json").exists()


def test_max_cost_zero_still_refuses_a_paid_plan(tmp_path: Path, served: Served,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The counterpart: a finite budget is enforced (nan used to compare false and pass)."""
    root = make(tmp_path, served)
    code, out, err = run_cli(root, capsys, "apply", "--auto-approve", "--max-cost", "0")
    assert code == 1 and "error[apply.over_budget]" in err, out + err


def test_an_overflowing_number_in_a_dataset_is_invalid_json(tmp_path: Path, served: Served,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = make(tmp_path, served)
    line = json.dumps(CHAT)[:-1] + ', "weight": 1e999}'
    (root / "data" / "train.jsonl").write_text("\n".join([line] + [json.dumps(CHAT)] * 20) + "\n")
    refused(root, served, capsys, "dataset.invalid_json", "data/train.jsonl:1:", "out of range")


def test_plan_json_is_strict_json(tmp_path: Path, served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    root = make(tmp_path, served)
    code, out, _ = run_cli(root, capsys, "plan", "--json")
    assert code == 0
    json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


# ---------------------------------------------------------------------- item 10: no internal errors

Setup = Callable[[Path], None]


def _seed(n: int) -> Setup:
    return lambda root: _edit(root, "    seed: 1\n", f"    seed: {'9' * n}\n")


def _append(text: str) -> Setup:
    return lambda root: (root / "ftops.yaml").write_text((root / "ftops.yaml").read_text() + text)


def _dataset(rel: str, prepare: Callable[[Path], None]) -> Setup:
    def setup(root: Path) -> None:
        prepare(root)
        _edit(root, *with_training(rel))
    return setup


def _loop(root: Path) -> None:
    os.symlink("loop.jsonl", root / "data" / "loop.jsonl")


def _loop2(root: Path) -> None:
    os.symlink("b.jsonl", root / "data" / "a.jsonl")
    os.symlink("a.jsonl", root / "data" / "b.jsonl")


def _deep_line(root: Path) -> None:
    deep = '{"messages": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (root / "data" / "deep.jsonl").write_text(deep + "\n" + (json.dumps(CHAT) + "\n") * 20)


def _deep_tools(root: Path) -> None:
    tools = "[" * 990 + "]" * 990  # decodes, but re-encoding it to count tokens recursed too deep
    line = json.dumps(CHAT)[:-1] + f', "tools": {tools}}}'
    (root / "data" / "deep.jsonl").write_text(line + "\n" + (json.dumps(CHAT) + "\n") * 20)


def _state_dir(make_it: Callable[[Path], None]) -> Setup:
    def setup(root: Path) -> None:
        make_it(root / ".ftops")
    return setup


def _mkdirs(*rels: str) -> Callable[[Path], None]:
    def f(base: Path) -> None:
        for rel in rels:
            (base / rel).mkdir(parents=True)
    return f


def _files(*rels: str) -> Callable[[Path], None]:
    def f(base: Path) -> None:
        base.mkdir(exist_ok=True)
        for rel in rels:
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / rel).write_text("x")
    return f


def _dotftops_file(base: Path) -> None:
    base.write_text("not a directory")


# name: (setup, code, where, extra)
NO_INTERNAL_ERROR: dict[str, tuple[Setup, str, str, str]] = {
    "seed_5000_digits": (_seed(5000), "config.yaml_syntax", "ftops.yaml:13:11", "5,000 characters"),
    "seed_200_digits": (_seed(200), "config.yaml_syntax", "ftops.yaml:13:11", ""),
    "seed_90_digits": (_seed(90), "config.out_of_range", "ftops.yaml:13:11", ""),
    "recursive_sequence_alias": (_append("vars: &x [*x]\n"), "config.yaml_syntax", "ftops.yaml:", "recursive"),
    "recursive_nested_alias": (_append("vars:\n  a: &x [1, [2, *x]]\n"), "config.yaml_syntax", "ftops.yaml:",
                               "recursive"),
    "deep_flow_yaml": (_append("vars: {a: " + "[" * 3000 + "]" * 3000 + "}\n"), "config.yaml_syntax",
                       "ftops.yaml:", ""),
    "deep_block_yaml": (_append("vars:\n" + "".join("  " * (i + 1) + "a:\n" for i in range(100)) + "  " * 101
                                + "b: 1\n"), "config.yaml_syntax", "ftops.yaml:", "nested"),
    "dataset_symlink_loop": (_dataset("data/loop.jsonl", _loop), "config.dataset_unreadable", "ftops.yaml:9:20",
                             "symlink loop"),
    "dataset_symlink_cycle": (_dataset("data/a.jsonl", _loop2), "config.dataset_unreadable", "ftops.yaml:9:20",
                              "symlink loop"),
    "dataset_deeply_nested_line": (_dataset("data/deep.jsonl", _deep_line), "dataset.invalid_json",
                                   "data/deep.jsonl:1:", "nested too deeply"),
    "dataset_deeply_nested_tools": (_dataset("data/deep.jsonl", _deep_tools), "dataset.", "data/deep.jsonl:1:",
                                    ""),
    "dotftops_is_a_file": (_state_dir(_dotftops_file), "workspace.misshapen", ".ftops", "not a directory"),
    "state_json_is_a_directory": (_state_dir(_mkdirs("state.json")), "workspace.misshapen", "state.json", ""),
    "state_lock_is_a_directory": (_state_dir(_mkdirs("state.lock")), "workspace.misshapen", "state.lock", ""),
    "cache_is_a_file": (_state_dir(_files("cache")), "workspace.misshapen", "cache", ""),
    "hash_cache_is_a_directory": (_state_dir(_mkdirs("cache/hashes.json")), "workspace.misshapen", "hashes.json",
                                  ""),
    "state_symlink_loop": (_state_dir(lambda b: (b.mkdir(), os.symlink("state.json", b / "state.json"))),
                           "io.symlink_loop", "state.json", ""),
}


@pytest.mark.parametrize("case", sorted(NO_INTERNAL_ERROR))
def test_hostile_input_is_a_diagnostic_not_an_internal_error(case: str, tmp_path: Path, served: Served,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    setup, code, where, extra = NO_INTERNAL_ERROR[case]
    root = make(tmp_path, served)
    setup(root)
    for args in (("plan",), ("apply", "--auto-approve"), ("validate",)):
        before = served.requests
        rc, out, err = run_cli(root, capsys, *args)  # asserts: no traceback, no "internal error"
        text = out + err
        assert rc == 1, (args, text)
        assert f"error[{code}" in text and where in text and extra in text, (args, text)
        assert served.requests == before, f"{args}: {served.requests - before} request(s) sent"


def test_sandbox_database_that_is_not_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.reliability.harness import QUICKSTART_DATA

    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.jsonl").write_text((QUICKSTART_DATA / "train.jsonl").read_text())
    (root / "ftops.yaml").write_text("version: 1\nmodels:\n  bot:\n    base_model: gpt-4o-mini-2024-07-18\n"
                                     "    training_file: data/train.jsonl\n")
    (root / ".ftops").mkdir()
    (root / ".ftops" / "sandbox.db").write_bytes(b"garbage, not SQLite" * 100)
    rc, _, err = run_cli(root, capsys, "plan")
    assert rc == 1 and "error[sandbox.database]" in err, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes files whatever their mode")
@pytest.mark.parametrize("what", ["dataset", "state_dir"])
def test_unreadable_dataset_and_read_only_state_dir(what: str, tmp_path: Path, served: Served,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = make(tmp_path, served)
    target = root / "data" / "train.jsonl" if what == "dataset" else root / ".ftops"
    if what == "state_dir":
        target.mkdir()
    target.chmod(0o000 if what == "dataset" else 0o555)
    try:
        rc, out, err = run_cli(root, capsys, "apply", "--auto-approve")
        assert rc == 1
        expected = "error[config.dataset_unreadable]" if what == "dataset" else "error[io.permission_denied]"
        assert expected in err, out + err
    finally:
        target.chmod(0o755)


# ---------------------------------------------------------------------- item 16: messages


def test_config_that_is_a_fifo_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    os.mkfifo(root / "ftops.yaml")
    rc, _, err = run_cli(root, capsys, "validate")  # must not block reading the FIFO
    assert rc == 1
    assert "error[config.not_a_file]" in err and "a FIFO" in err, err
    assert "rename" not in err


@pytest.mark.parametrize("db, ok", [("../outside.db", False), ("/tmp/ftops-elsewhere.db", False),
                                    ("sub/../../outside.db", False), ("state/sandbox.db", True)])
def test_sandbox_db_outside_the_project_is_refused(db: str, ok: bool, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    from tests.reliability.harness import QUICKSTART_DATA

    (root / "data" / "train.jsonl").write_text((QUICKSTART_DATA / "train.jsonl").read_text())
    (root / "ftops.yaml").write_text(f"version: 1\nprovider: {{type: sandbox, db: '{db}'}}\nmodels:\n  bot:\n"
                                     "    base_model: gpt-4o-mini-2024-07-18\n    training_file: data/train.jsonl\n")
    rc, out, err = run_cli(root, capsys, "plan")
    if ok:
        assert rc == 0, err
        assert (root / "state" / "sandbox.db").exists()
    else:
        assert rc == 1 and "error[config.path_outside_project]" in err and "ftops.yaml:2:" in err, out + err
        assert not (tmp_path / "outside.db").exists() and not Path("/tmp/ftops-elsewhere.db").exists()


def test_empty_base_url_is_refused(tmp_path: Path, served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    root = make(tmp_path, served)
    _edit(root, f"  base_url: {served.url}\n", "  base_url: ''\n")
    refused(root, served, capsys, "config.invalid_value", "ftops.yaml:5:13", "base_url")


assert TRAIN  # imported for with_training's pattern
