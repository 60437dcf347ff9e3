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


def plan_markdown(plan: Plan, diagnostics: Sequence[Diagnostic] = ()) -> str:
    """For PR comments: a summary line, every warning, a table, and the attribute diffs in a details block.

    `diagnostics` are the dataset and configuration warnings the text plan prints before the plan:
    a reviewer must see them too.
    """
    doc = _printable_doc(plan_json(plan))
    out = [f"### ftops plan — {_code(doc['project'])} on {_md(doc['provider'])}", "", f"**{summary_line(doc)}**", ""]
    diags = [d.to_json() for d in dict.fromkeys(diagnostics)] + list(doc["warnings"])
    if diags:
        out += [f"**Warnings ({len(diags)})**", "", *diagnostic_lines_markdown(diags), ""]
    if doc["intents"]:
        out += [intents_heading(doc["intents"]), "", *[f"- {line}" for line in intent_lines(doc["intents"])], ""]
    if doc.get("cancels") or any(m["action"] == "replace" for m in doc["models"]):
        out += ["> [!WARNING]", "> This plan cancels running jobs or replaces models. Cancelling cannot be undone; "
                "replaced models stay callable until pruned.", ""]
    if doc["models"]:
        out += ["| model | provider | action | reason | status | est. cost |", "|---|---|---|---|---|---|"]
        for m in doc["models"]:
            cost = m.get("cost") if m["action"] in ("create", "replace", "retry") else None
            out.append(f"| {_code(m['name'])} | {_md(m['provider'])} | {m['action']} | {_code(m['reason'])} | "
                       f"{_md(m.get('status') or '')} | "
                       f"{money(cost['usd'], cost['approximate']) if cost else ''} |")
        out.append("")
    if doc.get("drift"):
        out += ["**Changed outside ftops**", ""]
        out += [f"- {_code(x['address'])}: `{x['kind']}` ({_code(x['id'])})" for x in doc["drift"]]
        out.append("")
    for k in doc.get("cancels") or []:
        out.append(f"- **cancel** job {_code(k['job_id'])} of {_code(k['name'])} ({_md(k['status'])}): "
                   f"{_code(k['reason'])}")
    if doc.get("cancels"):
        out.append("")
    uploads = [f for f in doc["files"] if f["action"] == "upload"]
    if uploads:
        out.append("Uploads: " + ", ".join(f"{_code(f['path'])} ({human_bytes(f['bytes'])})" for f in uploads))
        out.append("")
    diffs = [m for m in doc["models"] if m["changes"]]
    if diffs:
        out += ["<details><summary>Attribute changes</summary>", "", "```diff"]
        for m in diffs:
            out.append(f"# {m['address']}")
            for c in m["changes"]:
                out.append(f"- {c['path']}: {short(c['before'])}")
                out.append(f"+ {c['path']}: {short(c['after'])}")
        out += ["```", "", "</details>"]
    return "\n".join(out).rstrip() + "\n"
