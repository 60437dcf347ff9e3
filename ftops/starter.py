"""`ftops init`: a small, valid starter project on the sandbox (also the source of examples/quickstart)."""

from __future__ import annotations

import json
from pathlib import Path

from ftops.diagnostics import FtopsError, error

SYSTEM = "You are Nimbus, the support assistant of Acme Cloud. Answer briefly and accurately."

_TOPICS = [
    ("reset my password", "Open Settings → Security, choose “Reset password” and follow the e-mailed link."),
    ("change my billing plan", "Go to Billing → Plans, pick the new plan and confirm; it applies at once."),
    ("download an invoice", "Invoices are under Billing → History; each row has a PDF download button."),
    ("add a team member", "In Team → Members choose “Invite”, enter their address and pick a role."),
    ("enable two-factor authentication", "Settings → Security → Two-factor: scan the QR code with your app."),
    ("delete my account", "Settings → Account → Delete account. Data is removed after 30 days."),
    ("increase my storage quota", "Billing → Add-ons lets you add storage in 100 GB steps."),
    ("restore a deleted file", "Open Trash, select the file and choose Restore; trash keeps files 30 days."),
    ("rotate an API token", "Developer → Tokens: create a new token, update your apps, then revoke the old one."),
    ("export my data", "Settings → Account → Export prepares an archive and e-mails you a link."),
]
_OPENERS = ["How do I {t}?", "Can you tell me how to {t}?", "I need to {t}. What should I do?",
            "What's the way to {t}?", "Quick question: how can I {t}?", "Where do I go to {t}?",
            "Please explain how to {t}.", "Is there a way to {t} myself?"]


def starter_examples(n: int = 60, offset: int = 0) -> list[dict[str, object]]:
    """`n` distinct supervised chat examples (deterministic)."""
    out: list[dict[str, object]] = []
    i = offset
    while len(out) < n:
        topic, answer = _TOPICS[i % len(_TOPICS)]
        opener = _OPENERS[(i // len(_TOPICS)) % len(_OPENERS)]  # 80 distinct combinations
        out.append({"messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": opener.format(t=topic)},
            {"role": "assistant", "content": answer},
        ]})
        i += 1
    return out


def write_jsonl(path: Path, rows: list[dict[str, object]], *, exclusive: bool = False) -> None:
    """Write rows as JSON Lines; `exclusive` refuses (FileExistsError) to replace an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x" if exclusive else "w", encoding="utf-8") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows))


STARTER_YAML = """\
# ftops project: the fine-tuned models you want, reviewed in git.
# Docs: `ftops --help`. Editor completion: point yaml-language-server at ftops's schema.
version: 1
project: {project}        # unique to this project: ftops finds its own jobs by it
provider:
  type: sandbox          # the built-in emulator: no key, no network. Switch to `openai` later.
models:
  support-bot:
    base_model: gpt-4o-mini-2024-07-18
    training_file: data/train.jsonl
    validation_file: data/val.jsonl
    method: supervised
    hyperparameters: {n_epochs: 3, batch_size: auto, learning_rate_multiplier: auto}
    suffix: support
    seed: 42
    metadata: {team: support}
"""


def starter_files(target: Path) -> list[Path]:
    """The files `init` writes (besides appending to .gitignore)."""
    return [target / "ftops.yaml", target / "data" / "train.jsonl", target / "data" / "val.jsonl"]


def write_starter(target: Path, *, force: bool = False, project: str | None = None) -> list[Path]:
    """Write the starter project into `target`; never replaces a file unless `force`.

    Every file that would be replaced is named in one error, before anything is written. The
    project name is unique to this project (directory name plus a random tag), so two repositories
    on one account never adopt each other's jobs. `.gitignore` is only ever appended to.
    """
    from ftops.config import unique_project_name

    files = starter_files(target)
    existing = [p for p in files if p.exists() or p.is_symlink()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise FtopsError(error(
            "init.exists", f"{len(existing)} file(s) already exist: {names}",
            "ftops init never overwrites a file; nothing was written.",
            hint="pick an empty directory (`ftops init NEW_DIR`), or pass `--force` to replace these files"))
    target.mkdir(parents=True, exist_ok=True)
    cfg, train, val = files
    name = project or unique_project_name(target.resolve().name)
    try:
        # exclusive unless forced: a file created between the check and the write is not replaced either
        with cfg.open("w" if force else "x", encoding="utf-8") as f:
            f.write(STARTER_YAML.replace("{project}", name))
        write_jsonl(train, starter_examples(60), exclusive=not force)
        write_jsonl(val, starter_examples(12, offset=60), exclusive=not force)
    except FileExistsError as exc:
        raise FtopsError(error("init.exists", f"{exc.filename} already exists",
                               "it appeared while ftops init was writing; it was not replaced.",
                               hint="pass `--force` to replace it")) from None
    written = [*files, target / ".gitignore"]
    gi = written[3]
    existing_text = gi.read_text() if gi.exists() else ""
    if ".ftops/" not in existing_text:
        gi.write_text(existing_text + ("" if existing_text.endswith("\n") or not existing_text else "\n") +
                      "# ftops state, caches and the sandbox database\n.ftops/\n")
    return written
