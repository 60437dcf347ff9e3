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


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows), encoding="utf-8")


STARTER_YAML = """\
# ftops project: the fine-tuned models you want, reviewed in git.
# Docs: `ftops --help`. Editor completion: point yaml-language-server at ftops's schema.
version: 1
project: starter
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


def write_starter(target: Path) -> list[Path]:
    cfg = target / "ftops.yaml"
    if cfg.exists():
        raise FtopsError(error("init.exists", f"{cfg} already exists", "ftops init never overwrites a project.",
                               hint="pick an empty directory: `ftops init NEW_DIR`"))
    target.mkdir(parents=True, exist_ok=True)
    written = [cfg, target / "data" / "train.jsonl", target / "data" / "val.jsonl", target / ".gitignore"]
    cfg.write_text(STARTER_YAML, encoding="utf-8")
    write_jsonl(written[1], starter_examples(60))
    write_jsonl(written[2], starter_examples(12, offset=60))
    gi = written[3]
    existing = gi.read_text() if gi.exists() else ""
    if ".ftops/" not in existing:
        gi.write_text(existing + ("" if existing.endswith("\n") or not existing else "\n") +
                      "# ftops state, caches and the sandbox database\n.ftops/\n")
    return written
