"""Plans rendered for people (text, Markdown) and machines (JSON), all from one JSON value.

`plan_json` is the contract (schemas/plan.schema.json describes the saved-plan file; this is the
`--json` view, with Terraform-style `actions` and `address` per model). Text and Markdown are
derived from it, so the three never disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from ftops.diagnostics import Diagnostic, printable
from ftops.engine.model import ModelAction, Plan

Style = Callable[..., str]

_VERB = {"create": "will be created", "replace": "will be replaced", "retry": "will be retried",
         "no-op": "is unchanged", "adopt": "will be adopted (job found on the provider)",
         "orphan": "is no longer declared (kept; nothing is deleted)"}
_SIGIL = {"create": "+", "replace": "-/+", "retry": "+", "no-op": " ", "adopt": "<=", "orphan": "~"}
_COLOR = {"create": "green", "replace": "yellow", "retry": "yellow", "no-op": None, "adopt": "cyan",
          "orphan": "magenta"}


def plain(text: str, **_: Any) -> str:
    return text


def plan_json(plan: Plan) -> dict[str, Any]:
    doc = plan.model_dump(mode="json")
    for m in doc["models"]:
        m["address"] = f"models.{m['name']}"
        m["actions"] = ModelAction(m["action"]).terraform_actions
        m["before"] = {"fingerprint": m.get("before_fingerprint")} if m.get("before_fingerprint") else None
        m["after"] = m.get("attributes")
        m["action_reason"] = m["reason"]
        if m.get("waits_for"):  # Terraform's "known after apply"
            m["after_unknown"] = {"base_model": True}
        if m["action"] == "replace":
            # A replace deletes nothing: the old fine-tuned model stays and stays in history.
            m["replaces"] = {"fingerprint": m.get("before_fingerprint")}
            m["replace_paths"] = sorted({c["path"].split(".")[0] for c in m["changes"]})
    for d in doc.get("deployments") or []:
        d["address"] = f"models.{d['name']}.deployment"
        d["cost_per_hour"] = d["cost_per_hour"] if d["cost_per_hour"] is not None else "unknown"
    for k in doc.get("deletes") or []:
        k["actions"] = ["delete"]
        k["address"] = f"models.{k['name']}" if k["name"] else f"files.{k['id']}"
    doc["has_changes"] = plan.has_changes
    return doc


def _printable_doc(value: Any) -> Any:
    """The JSON value with every string made printable: what text and Markdown are derived from.

    Strings come from ftops.yaml (paths, metadata), the environment (base_url) and the provider
    (statuses, errors, model ids); a newline in any of them must not forge a line of the plan.
    """
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {k: _printable_doc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable_doc(v) for v in value]
    return value


def _code(text: str) -> str:
    """`text` as a Markdown code span that no backtick inside it can close, safe in a table cell."""
    text = printable(text).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md(text: str) -> str:
    """Prose for Markdown: one line, no raw HTML, no table-cell breaks."""
    return printable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)


def short(value: Any) -> str:
    if isinstance(value, str) and value.startswith("sha256:"):
        return f"sha256 {value[7:15]}…"
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, allow_nan=False)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def money(usd: float | None, approximate: bool = False) -> str:
    if usd is None:
        return "unknown (no price for this base model; set `pricing:` in ftops.yaml)"
    return f"{'≈ ' if approximate else ''}${usd:,.2f}"


def summary_line(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    parts = [f"{s['upload']} to upload", f"{s['create']} to create", f"{s['replace']} to replace"]
    if s["retry"]:
        parts.append(f"{s['retry']} to retry")
    parts.append(f"{s['unchanged']} unchanged")
    if s["adopt"]:
        parts.append(f"{s['adopt']} to adopt")
    if s["orphan"]:
        parts.append(f"{s['orphan']} orphaned")
    if s.get("cancel"):
        parts.append(f"{s['cancel']} to cancel")
    for key, verb in (("deploy", "to deploy"), ("deploy_update", "deployment(s) to update"),
                      ("deploy_delete", "deployment(s) to delete")):
        if s.get(key):
            parts.append(f"{s[key]} {verb}")
    if s.get("delete"):
        parts.append(f"{s['delete']} to delete")
    if s.get("move"):
        parts.append(f"{s['move']} to move")
    line = "Plan: " + ", ".join(parts) + "."
    if s["create"] + s["replace"] + s["retry"]:
        line += f" Estimated cost: {money(doc['cost_usd'], doc['cost_approximate'])}."
    return line


def intents_heading(intents: list[dict[str, Any]]) -> str:
    # The state cannot tell an interrupted apply from one whose request failed: say only what is known.
    return (f"An earlier apply started {len(intents)} write(s) it never confirmed (it stopped, or the request "
            "failed, before recording the result); checked against the provider:")


def intent_lines(intents: list[dict[str, Any]]) -> list[str]:
    out = []
    for i in intents:
        what = f"upload sha256 {i['key'][:12]}…" if i["kind"] == "upload_file" else \
            f"job for models.{i['model']} (fingerprint {i['key'][:12]}…)"
        verdict = f"it took effect: {i['found']} (adopted)" if i["found"] else \
            "it never took effect (nothing on the provider; the plan below does it again if still needed)"
        out.append(f"{what}: {verdict}")
    return out


MAX_PER_CODE = 5


def diagnostic_lines_markdown(diags: list[dict[str, Any]]) -> list[str]:
    """Diagnostics (to_json form) as a Markdown list: at most MAX_PER_CODE of one code per file, as
    the text output shows them."""
    out: list[str] = []
    counts: dict[tuple[str, str], int] = {}
    hidden: dict[tuple[str, str], int] = {}
    for d in sorted(diags, key=lambda d: d.get("severity") != "error"):
        rng = d.get("range") or {}
        key = (d["code"], str(rng.get("filename") or ""))
        counts[key] = counts.get(key, 0) + 1
        if counts[key] > MAX_PER_CODE:
            hidden[key] = hidden.get(key, 0) + 1
            continue
        where = f" `{rng['filename']}:{rng['line']}`" if rng else ""
        line = f"- **{d.get('severity') or 'warning'}** `{d['code']}`{where}: {d['summary']}"
        if d.get("address"):
            line += f" ({d['address']})"
        if d.get("detail"):
            line += f" — {d['detail']}"
        if d.get("hint"):
            line += f" *hint:* {d['hint']}"
        out.append(line)
    for (code, fn), n in sorted(hidden.items()):
        out.append(f"- … and {n} more `{code}` in {f'`{fn}`' if fn else 'the config'}")
    return out


def plan_text(plan: Plan, style: Style = plain) -> str:
    doc = _printable_doc(plan_json(plan))
    out = [style(f"ftops plan · project {doc['project']} · {_providers_line(doc)}"
                 + (" · offline, from state only" if doc["offline"] else ""), bold=True), ""]
    multi = len(doc.get("providers") or {}) > 1
    if doc["intents"]:
        out.append(intents_heading(doc["intents"]))
        out += [f"  {line}" for line in intent_lines(doc["intents"])]
        out.append("")
    if doc.get("drift"):
        out.append("Changed outside ftops:")
        for x in doc["drift"]:
            out.append(style(f"  ~ {x['address']}: {x['kind']} ({x['id']}): {x['detail']}", fg="magenta"))
        out.append("")
    if doc["files"]:
        out.append("Datasets:")
        for f in doc["files"]:
            tag = {"upload": style("+ upload", fg="green"), "reuse": "  reuse ",
                   "adopt": style("<= adopt", fg="cyan")}[f["action"]]
            where = f" as {f['file_id']}" if f.get("file_id") else ""
            to = f" to {f['provider']}" if multi else ""
            if f.get("converted_to"):  # the declared file, then the converted copy that is uploaded
                out.append(f"  {tag}  {f['path']}{to}  ({human_bytes(f['source_bytes'] or 0)}, sha256 "
                           f"{(f['source_sha256'] or '')[:12]}…) as {f['converted_to']} "
                           f"({human_bytes(f['bytes'])}, sha256 {f['sha256'][:12]}…){where}  for {', '.join(f['models'])}")
                continue
            out.append(f"  {tag}  {f['path']}{to}  ({human_bytes(f['bytes'])}, sha256 {f['sha256'][:12]}…){where}"
                       f"  for {', '.join(f['models'])}")
        out.append("")
    out.append("Models:")
    for m in doc["models"]:
        act = m["action"]
        on = f" (on {m['provider']})" if multi else ""
        head = f"  {_SIGIL[act]:>3} {m['address']}{on} {_VERB[act]}"
        color = _COLOR[act]
        out.append(style(head, fg=color) if color else head)
        if act in ("create", "replace", "retry") or m["changes"]:
            out.append(f"        reason: {m['reason']}")
        if m.get("waits_for") and act in ("create", "replace", "retry"):
            out.append(style(f"        waits for models.{m['waits_for']}: base_model = (known after apply); the job is "
                             f"created once models.{m['waits_for']}'s job succeeded", fg="cyan"))
        if m.get("status"):
            detail = f"job {m['job_id']}: {m['status']}"
            if m.get("fine_tuned_model"):
                detail += f" → {m['fine_tuned_model']}"
            out.append(f"        {detail}")
        if m.get("error"):
            err = m["error"]
            out.append(f"        last error: {err.get('code') or ''} {err.get('message') or ''}".rstrip())
        for c in m["changes"]:
            out.append(f"        {c['path']}: {short(c['before'])} → {short(c['after'])}")
        if act == "create" and m.get("attributes"):
            out.extend(f"        {line}" for line in _new_attributes(m["attributes"]))
        cost = m.get("cost")
        if act in ("create", "replace", "retry") and cost:
            out.append(f"        {cost['trained_tokens']:,} trained tokens ({cost['n_epochs']} epochs) · "
                       f"{money(cost['usd'], cost['approximate'])}"
                       + (f" ({cost['note']})" if cost.get("note") else ""))
    if not doc["models"]:
        out.append("  (no models declared)")
    if doc.get("deletes"):
        out.append("")
        out.append("To delete (--prune / destroy; cannot be undone):")
        for k in doc["deletes"]:
            verb = "cancel job" if k["kind"] == "job" else f"delete {k['kind']}"
            out.append(style(f"    - {verb} {k['id']}" + (f" of models.{k['name']}" if k["name"] else "")
                             + f" ({k['reason']})", fg="red"))
    if doc.get("moves"):
        out.append("")
        out.append("Moves (state only; nothing is retrained):")
        for mv in doc["moves"]:
            out.append(style(f"    -> models.{mv['from_name']} moves to models.{mv['to_name']} ({mv['reason']})",
                             fg="cyan"))
    if doc.get("cancels"):
        out.append("")
        out.append("Jobs to cancel (cannot be undone; finished models are never touched):")
        for k in doc["cancels"]:
            if k["reason"] == "record_finished_duplicate":
                out.append(style(f"    ! job {k['job_id']} of models.{k['name']} duplicates {k['kept_job_id']} and "
                                 f"already {k['status']}: it cannot be cancelled (paid twice); it will be recorded "
                                 "and apply will fail naming it", fg="red"))
                continue
            why = (f"duplicate of {k['kept_job_id']}" if k["reason"] == "cancel_duplicate"
                   else "superseded by the new declaration")
            out.append(style(f"    ! cancel job {k['job_id']} of models.{k['name']} ({k['status']}): {why}", fg="red"))
    if doc.get("deployments"):
        out += ["", "Deployments:"]
        for d in doc["deployments"]:
            verb = {"create": "will be created", "update": "will be updated in place", "delete": "will be deleted",
                    "no-op": "is unchanged", "wait": "waits for its job to succeed",
                    "keep": "is kept (not declared any more; `--prune` deletes it)"}[d["action"]]
            if d["reason"] == "kept_because_prevent_destroy":
                verb = "is kept (lifecycle.prevent_destroy)"
            sig = {"create": "+", "update": "~", "delete": "-"}.get(d["action"], " ")
            line = f"  {sig:>3} {d['address']} {verb}"
            out.append(style(line, fg={"+": "green", "~": "yellow", "-": "red"}.get(sig)) if sig.strip() else line)
            what = d.get("deployment_id") or "(new)"
            serves = f" serving {d['model_id']}" if d.get("model_id") else ""
            cost = d["cost_per_hour"]
            price = f"${cost:,.2f}/hour per replica" if isinstance(cost, (int, float)) else "cost per hour unknown"
            out.append(f"        {what}{serves} · {price}" + (f" · {d['status']}" if d.get("status") else ""))
            for k, v in sorted((d.get("settings") or {}).items()):
                before = (d.get("before") or {}).get(k)
                if d["action"] == "update" and before != v:
                    out.append(f"        {k}: {short(before)} → {short(v)}")
    out.append("")
    for w in doc["warnings"]:
        out.append(style(f"warning[{w['code']}] {w['summary']}", fg="yellow"))
        if w.get("detail"):
            out.append(f"  {w['detail']}")
    out.append(style(summary_line(doc), bold=True))
    if not plan.has_changes:
        out.append("No changes. The provider matches the configuration.")
    return "\n".join(out)


def _providers_line(doc: dict[str, Any]) -> str:
    provs = doc.get("providers") or {}
    if len(provs) <= 1:
        return f"provider {doc['provider']} ({doc['endpoint']})"
    return "providers " + ", ".join(f"{n}: {p['type']} ({p['endpoint']})" for n, p in sorted(provs.items()))


def _new_attributes(attrs: dict[str, Any]) -> list[str]:
    """What will be sent for a new model, as Terraform shows a new resource's attributes."""
    out = []
    for key in ("provider", "base_model", "method", "training_file", "validation_file", "seed", "suffix"):
        if attrs.get(key) is not None:
            out.append(f"+ {key}: {short(attrs[key])}")
    hp = {k: v for k, v in (attrs.get("hyperparameters") or {}).items() if v not in ("auto", "default")}
    if hp:
        out.append("+ hyperparameters: " + ", ".join(f"{k}={v}" for k, v in sorted(hp.items())))
    if attrs.get("options"):
        out.append("+ options: " + ", ".join(f"{k}={v}" for k, v in sorted(attrs["options"].items())))
    return out


#: GitHub refuses a comment body longer than this many characters.
COMMENT_LIMIT = 65_536
#: What one Markdown part may hold: under COMMENT_LIMIT with room for a line the workflow adds (comment.yml
#: notes a fork plan made without a state snapshot) and for characters GitHub may count twice.
PART_BUDGET = 60_000


def plan_marker(project: str, part: int = 1, parts: int = 1) -> str:
    """The hidden first line of a plan comment, by which the comment workflow finds it to update it.

    One part: `<!-- ftops-plan:PROJECT -->`; several: `<!-- ftops-plan:PROJECT part i/n -->`. A workflow
    matches part i by project and i (the single form is part 1), so a plan that grows or shrinks still
    updates its comments in place. Project names are slugs (NAME_PATTERN): they cannot close the comment.
    """
    return f"<!-- ftops-plan:{project} -->" if parts == 1 else f"<!-- ftops-plan:{project} part {part}/{parts} -->"


class _Section:
    """A run of items with the lines that open and close it, repeated in each part it continues in
    (a table's header, a code fence), so every part is well-formed Markdown on its own."""

    def __init__(self, head: list[str], items: list[str], tail: list[str], *, collapsed: bool) -> None:
        self.head = "".join(f"{line}\n" for line in head)
        self.items = [f"{item}\n" for item in items]
        self.tail = "".join(f"{line}\n" for line in tail)
        self.collapsed = collapsed


def plan_markdown_parts(plan: Plan, diagnostics: Sequence[Diagnostic] = (), *,
                        budget: int = PART_BUDGET) -> list[str]:
    """The plan as one or more Markdown documents for PR comments, each at most `budget` characters.

    Part 1 shows the summary line, the warning banner (anything replaced, cancelled or deleted), every
    warning (`diagnostics` are the dataset and configuration warnings the text plan prints before the
    plan: a reviewer must see them too) and the unconfirmed writes; a collapsed `<details>` holds the
    per-model table, drift, cancels, deletes, deployments, uploads and attribute diffs. When that does
    not fit, it continues in further parts; each part starts with its own marker (`plan_marker`) and a
    "part i of n" line.
    """
    doc = _printable_doc(plan_json(plan))
    title = f"### ftops plan — {_code(doc['project'])} on {_md(doc['provider'])}" + \
        (" · offline, from state only" if doc["offline"] else "")
    front, body = _markdown_sections(doc, diagnostics)
    n_models = len(doc["models"])
    summary = (f"{n_models} model(s): actions, reasons, costs and attribute changes" if n_models
               else "Details")
    widest = len(plan_marker(doc["project"], 99_999, 99_999)) + len("*part 99999 of 99999*") + 4
    pages = _pack(front + body, budget - len(title) - widest, summary)
    n = len(pages)
    out = []
    for i, page in enumerate(pages, 1):
        head = f"{plan_marker(doc['project'], i, n)}\n{title}\n"
        if n > 1:
            head += f"*part {i} of {n}*\n"
        out.append(head + "\n" + page.rstrip("\n") + "\n")
    return out


def plan_markdown(plan: Plan, diagnostics: Sequence[Diagnostic] = ()) -> str:
    """For PR comments: `plan_markdown_parts` as one document, the parts one after another when the plan
    is too long for one comment (each part begins with its marker)."""
    return "\n".join(plan_markdown_parts(plan, diagnostics))


def _markdown_sections(doc: dict[str, Any], diagnostics: Sequence[Diagnostic]) -> tuple[list[_Section], list[_Section]]:
    """(what part 1 shows openly, what the collapsed details hold), each as sections of items."""
    front = [_Section([], [f"**{summary_line(doc)}**"], [""], collapsed=False)]
    n_replace = sum(m["action"] == "replace" for m in doc["models"])
    n_cancel, n_delete = len(doc.get("cancels") or []), len(doc.get("deletes") or [])
    n_deploy_delete = sum(d["action"] == "delete" for d in doc.get("deployments") or [])
    if n_replace or n_cancel or n_delete or n_deploy_delete:
        what = [f"{n} {noun}" for n, noun in ((n_replace, "model(s) replaced"), (n_cancel, "job(s) cancelled"),
                                               (n_delete, "object(s) deleted"),
                                               (n_deploy_delete, "deployment(s) deleted")) if n]
        front.append(_Section(["> [!WARNING]"], [
            f"> This plan has {', '.join(what)}. Cancelling and deleting cannot be undone; replaced models "
            "stay callable until pruned."], [""], collapsed=False))
    diags = [d.to_json() for d in dict.fromkeys(diagnostics)] + list(doc["warnings"])
    if diags:
        front.append(_Section([f"**Warnings ({len(diags)})**", ""], diagnostic_lines_markdown(diags), [""],
                              collapsed=False))
    if doc["intents"]:
        front.append(_Section([intents_heading(doc["intents"]), ""],
                              [f"- {line}" for line in intent_lines(doc["intents"])], [""], collapsed=False))

    body: list[_Section] = []

    def add(head: list[str], items: list[str], tail: list[str] | None = None) -> None:
        if items:
            body.append(_Section(head, items, [""] if tail is None else tail, collapsed=True))

    rows = []
    for m in doc["models"]:
        cost = m.get("cost") if m["action"] in ("create", "replace", "retry") else None
        rows.append(f"| {_code(m['name'])} | {_md(m['provider'])} | {m['action']} | {_code(m['reason'])} | "
                    f"{_md(m.get('status') or '')} | {money(cost['usd'], cost['approximate']) if cost else ''} |")
    add(["| model | provider | action | reason | status | est. cost |", "|---|---|---|---|---|---|"], rows)
    add(["**Changed outside ftops**", ""],
        [f"- {_code(x['address'])}: `{x['kind']}` ({_code(x['id'])})" for x in doc.get("drift") or []])
    add(["**Jobs to cancel** (cannot be undone)", ""],
        [f"- **cancel** job {_code(k['job_id'])} of {_code(k['name'])} ({_md(k['status'])}): {_code(k['reason'])}"
         for k in doc.get("cancels") or []])
    add(["**To delete** (`--prune` / `destroy`; cannot be undone)", ""],
        [f"- **delete** {_md(k['kind'])} {_code(k['id'])}" + (f" of {_code(k['name'])}" if k["name"] else "")
         + f": {_code(k['reason'])}" for k in doc.get("deletes") or []])
    add(["**Moves** (state only; nothing is retrained)", ""],
        [f"- {_code(mv['from_name'])} → {_code(mv['to_name'])}: {_code(mv['reason'])}" for mv in doc.get("moves") or []])
    add(["**Deployments**", ""],
        [f"- {_code(d['address'])}: {d['action']} ({_code(d['reason'])})" for d in doc.get("deployments") or []
         if d["action"] not in ("no-op",)])
    add(["**Uploads**", ""], [f"- {_code(f['path'])} ({human_bytes(f['bytes'])})" for f in doc["files"]
                              if f["action"] == "upload"])
    diffs = []
    for m in doc["models"]:
        if m["changes"]:
            lines = [f"# {m['address']}"]
            for c in m["changes"]:
                lines += [f"- {c['path']}: {short(c['before'])}", f"+ {c['path']}: {short(c['after'])}"]
            diffs.append("\n".join(lines))
        elif m["action"] == "create" and m.get("attributes"):  # what a new model is built from, as the text plan
            diffs.append("\n".join([f"# {m['address']} (new)", *_new_attributes(m["attributes"])]))
    # a fence longer than any run of backticks in the values, so none can close it
    fence = "`" * max([3] + [len(run) + 1 for d in diffs for run in re.findall(r"`+", d)])
    add(["**Attribute changes**", "", f"{fence}diff"], diffs, [fence, ""])
    return front, body


def _pack(sections: list[_Section], budget: int, summary: str) -> list[str]:
    """Fill pages of at most `budget` characters with the sections' items, closing and reopening the
    details block and the open section at each page break; an item longer than a page is cut."""
    opened = f"<details><summary>{summary}</summary>\n\n"
    reopened = f"<details><summary>{summary} (continued)</summary>\n\n"
    closed = "</details>\n"
    pages: list[str] = []
    page: list[str] = []
    size = 0
    in_details = False

    def close_cost() -> int:
        return len(closed) if in_details else 0

    def flush() -> None:
        nonlocal page, size, in_details
        if in_details:
            page.append(closed)
        pages.append("".join(page))
        page, size, in_details = [], 0, False

    for sec in sections:
        open_here = False
        for item in sec.items:
            while True:
                need = len(item) + len(sec.tail)
                if not open_here:
                    need += len(sec.head)
                if sec.collapsed and not in_details:
                    need += len(reopened if pages else opened) + len(closed)
                elif not sec.collapsed and in_details:
                    need += len(closed)
                else:
                    need += close_cost()
                if size + need <= budget or not page:
                    break
                page.append(sec.tail if open_here else "")
                size += len(sec.tail) if open_here else 0
                open_here = False
                flush()
            if sec.collapsed and not in_details:
                page.append(reopened if pages else opened)
                size += len(page[-1])
                in_details = True
            elif not sec.collapsed and in_details:
                page.append(closed)
                size += len(closed)
                in_details = False
            if not open_here:
                page.append(sec.head)
                size += len(sec.head)
                open_here = True
            room = budget - size - len(sec.tail) - close_cost()
            if len(item) > room:
                cut = "… (cut: too long for a comment; `ftops plan` shows it whole)\n"
                item = item[: max(room - len(cut), 0)] + cut
            page.append(item)
            size += len(item)
        if open_here:
            page.append(sec.tail)
            size += len(sec.tail)
    if page or not pages:
        flush()
    return pages
