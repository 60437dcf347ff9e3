"""Plans that know when models die: announced ends, read from capabilities and catalogues only.

Pure: every input is a value ("today" included, from the workspace's one injectable clock), so
tests pin dates. The engine learns no provider name here: a provider declares its dates in its
`Capabilities` (`new_jobs_until`, `model_shutdowns`, with their sources) and, where it publishes a
complete catalogue, refresh reads it (`RemoteModel.shutdown_date`, `new_jobs_until`). The
catalogue wins over the declaration (it is newer); a fine-tuned model stops working with its base.

Three ends per model: its base model retires, its current fine-tuned model stops working, its
provider stops accepting new jobs. Each is a `Deadline` on the plan's model (so `--json` carries
it) and a warning. A plan that would create a job after an *exact* announced end is refused
(`Refusal`) on a real provider; dates announced as "no earlier than" only warn, and on the sandbox
a past end only warns unless the provider entry asks to rehearse it.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ftops.config.loader import chain_root
from ftops.diagnostics import did_you_mean
from ftops.engine.model import Deadline, DesiredModel, ModelChange, Plan
from ftops.engine.plan import record_state
from ftops.providers import Capabilities, Cutoff, RemoteModel
from ftops.state import State

__all__ = ["Refusal", "as_date", "base_model_end", "check_base_models", "review_deadlines"]


@dataclass(frozen=True)
class Refusal:
    """A model the plan may not go ahead with; the workspace turns it into a diagnostic at `path`."""

    model: str
    code: str
    summary: str
    detail: str
    hint: str
    path: tuple[str, ...]  # relative to models.NAME
    severity: str = "error"


def as_date(value: int | str | None) -> datetime.date | None:
    """A catalogue date: unix seconds or an ISO date/date-time; None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).date()
    try:
        return datetime.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _catalogue_cutoff(m: RemoteModel | None, field: str, source: str) -> Cutoff | None:
    d = as_date(getattr(m, field)) if m is not None else None
    return Cutoff(date=d, source=source, exact=m.dates_exact) if d is not None and m is not None else None


def base_model_end(caps: Capabilities, catalogue: Mapping[str, RemoteModel] | None, base_model: str) -> Cutoff | None:
    """The day `base_model` (and every fine-tune built on it) stops working: catalogue, then capabilities."""
    src = f"{caps.title or caps.name} model catalogue (GET /models)"
    declared = caps.model_shutdowns.get(base_model) or caps.model_shutdowns.get(caps.model_aliases.get(base_model, ""))
    read = _catalogue_cutoff((catalogue or {}).get(base_model), "shutdown_date", src)
    return declared if read is None or (declared is not None and declared.date == read.date) else read


def new_jobs_end(caps: Capabilities, catalogue: Mapping[str, RemoteModel] | None, base_model: str) -> Cutoff | None:
    """The last day a job may start from `base_model`: the earlier of the provider's and the model's."""
    src = f"{caps.title or caps.name} model catalogue (GET /models)"
    ends = [c for c in (caps.new_jobs_until, _catalogue_cutoff((catalogue or {}).get(base_model),
                                                                "new_jobs_until", src)) if c is not None]
    return min(ends, key=lambda c: c.date) if ends else None


def _deadline(kind: str, c: Cutoff, today: datetime.date) -> Deadline:
    return Deadline(kind=kind, date=c.date.isoformat(), days=(c.date - today).days, source=c.source, exact=c.exact)


def _when(d: Deadline, future: str, past: str) -> str:
    approx = "" if d.exact else "no earlier than "
    if d.days >= 0:
        return f"{future} {approx}{d.date} ({d.days} day{'s' if d.days != 1 else ''})"
    return f"{past} {approx}{d.date} ({-d.days} day{'s' if d.days != -1 else ''} ago)"


def review_deadlines(plan: Plan, desired: list[DesiredModel], state: State, caps: Mapping[str, Capabilities],
                     catalogues: Mapping[str, Mapping[str, RemoteModel]], today: datetime.date,
                     lenient: Mapping[str, str]) -> tuple[Plan, list[Refusal]]:
    """The plan with each model's deadlines and one warning per announced end, plus the refusals.

    `caps`/`catalogues` by provider entry name; `lenient[name]`: empty when an exact past end refuses a
    job on that entry (the provider's own endpoint, or a sandbox rehearsing), else why it only warns.
    """
    by_name = {d.name: d for d in desired}

    def upstream_of(name: str) -> str | None:
        return u if (u := by_name[name].upstream) in by_name else None

    warnings: list[dict[str, Any]] = []
    refusals: list[Refusal] = []
    models: list[ModelChange] = []
    closing: dict[str, tuple[Deadline, list[str]]] = {}
    for c in plan.models:
        pc = caps.get(c.provider)
        d = by_name.get(c.name)
        if pc is None:
            models.append(c)
            continue
        cat = catalogues.get(c.provider)
        title = pc.title or pc.name
        out: list[Deadline] = []
        base = str((d.attributes if d else {}).get("base_model") or "")
        root = by_name[chain_root(d.name, upstream_of)] if d is not None else None
        # A chained model's base is its upstream's fine-tuned model: it dies with the chain's first base.
        root_base = str(root.attributes.get("base_model") or "") if root is not None and root is not d else base
        if root_base:
            end = base_model_end(pc, cat, root_base)
            if end is not None:
                dl = _deadline("base_model_retires", end, today)
                out.append(dl)
                upstream = d.upstream if d is not None else None
                what = (f"base model {base}" if root_base == base or not upstream else
                        f"base model (the fine-tuned model of models.{upstream}, built on {root_base})")
                warnings.append(_warning("plan.base_model_retires", c.name, dl,
                                         f"models.{c.name}: {what} " + _when(dl, "retires on", "retired on"),
                                         f"Every fine-tuned model built on it stops working then. Source: {dl.source}."))
        rec = state.models.get(c.name)
        tuned = c.fine_tuned_model or (rec.job.fine_tuned_model if rec and rec.job else None)
        if not tuned and rec is not None and rec.job is not None and not record_state(rec.job).dead:
            tuned = f"of job {rec.job.job_id} (still training)"
        rec_caps = caps.get(rec.provider) if rec else None
        trained_on = str((rec.spec if rec else {}).get("base_model") or "")
        if root is not None and root is not d and rec is not None and rec.provider == c.provider:
            trained_on = root_base  # a chain's fine-tuned model dies with the chain's first base
        if tuned and rec_caps is not None and trained_on:
            end = base_model_end(rec_caps, catalogues.get(rec.provider) if rec else None, trained_on)
            if end is not None:
                dl = _deadline("fine_tuned_model_stops", end, today)
                out.append(dl)
                warnings.append(_warning("plan.fine_tuned_model_stops", c.name, dl,
                                         f"models.{c.name}: the current fine-tuned model {tuned} "
                                         + _when(dl, "stops working on", "stopped working on"),
                                         f"It dies with its base model {trained_on}. Retrain it elsewhere before "
                                         f"then (set `provider:`). Source: {dl.source}."))
        jobs_end = new_jobs_end(pc, cat, base) if base else pc.new_jobs_until
        if jobs_end is not None:
            dl = _deadline("new_jobs_end", jobs_end, today)
            out.append(dl)
            closing.setdefault(f"{c.provider}\0{dl.date}\0{dl.exact}", (dl, []))[1].append(c.name)
        if c.action.creates_job and c.provider in lenient:
            refusals.extend(_refusals(c, base, title, out, lenient[c.provider]))
        models.append(c.model_copy(update={"deadlines": out}) if out else c)
    for key, (dl, names) in sorted(closing.items()):
        pname = key.split("\0", 1)[0]
        pc = caps[pname]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        warnings.append(_warning(
            "plan.provider_closing", None, dl,
            f"provider `{pname}` ({pc.title or pc.name}) "
            + _when(dl, "accepts new fine-tuning jobs until", "stopped accepting new fine-tuning jobs on"),
            f"Concerns: {shown}. Existing fine-tuned models are not affected by this date. Source: {dl.source}."))
    warnings.sort(key=lambda w: (w["days"], w["code"], w.get("model") or ""))
    return plan.model_copy(update={"models": models, "warnings": [*plan.warnings, *warnings]}), refusals


def _warning(code: str, model: str | None, dl: Deadline, summary: str, detail: str) -> dict[str, Any]:
    w: dict[str, Any] = {"code": code, "severity": "warning", "summary": summary, "detail": detail,
                         "date": dl.date, "days": dl.days, "exact": dl.exact, "source": dl.source}
    if model is not None:
        w["model"] = model
        w["address"] = f"models.{model}"
    return w


def _refusals(c: ModelChange, base: str, title: str, deadlines: list[Deadline], lenient: str) -> list[Refusal]:
    out: list[Refusal] = []
    hint = (f"move the model: declare another provider under `providers:` and set `provider:` on models.{c.name} "
            "(with a base model that provider offers); the old fine-tuned model stays in history")
    for dl in deadlines:
        past = dl.days < 0 if dl.kind == "new_jobs_end" else dl.days <= 0
        if dl.kind == "fine_tuned_model_stops" or not past:
            continue
        if dl.kind == "new_jobs_end":
            summary = f"{title} accepts no new fine-tuning jobs since {dl.date}"
            path: tuple[str, ...] = ("provider",)
        else:
            summary = f"base model {base} was retired on {dl.date}"
            path = ("base_model",)
        why = f"this plan would {c.action.value} a job for models.{c.name}. Source: {dl.source}."
        if dl.exact and not lenient:
            out.append(Refusal(c.name, "plan.cutoff_passed", summary, f"{summary}: {why} Nothing was sent.",
                               hint, path))
        else:
            reason = "the date is announced as \"no earlier than\"" if not dl.exact else lenient
            out.append(Refusal(c.name, "plan.cutoff_passed", summary, f"{summary}: {why} The plan goes ahead: "
                               f"{reason}.", hint, path, severity="warning"))
    return out


def check_base_models(desired: list[DesiredModel], caps: Mapping[str, Capabilities],
                      catalogues: Mapping[str, Mapping[str, RemoteModel]], known_tuned: set[str]) -> list[Refusal]:
    """`base_model` against the provider's catalogue (refused when it is complete and read) or, offline,
    against the capabilities' list (a warning). Fine-tuned models of this project are always known."""
    out: list[Refusal] = []
    for d in sorted(desired, key=lambda m: m.name):
        pc = caps.get(d.provider)
        base = str(d.attributes.get("base_model") or "")
        if pc is None or not base or base in known_tuned or d.upstream:
            continue
        title = pc.title or pc.name
        cat = catalogues.get(d.provider)
        if cat:
            if base in cat:
                continue
            names = sorted(cat)
            severity, where = "error", f"{title}'s model catalogue"
        else:
            names = sorted(pc.known_base_models())
            if not names or base in names:
                continue
            severity, where = "warning", f"the base models ftops knows for {title} (offline)"
        hint = did_you_mean(base, names) or f"see {where}"
        out.append(Refusal(d.name, "provider.unknown_base_model", f"{base} is not in {where}",
                           f"models.{d.name} names base model {base}, which {where} does not list."
                           + (" Nothing was sent." if severity == "error" else
                              " It may still exist; the plan against the provider checks its catalogue."),
                           hint, ("base_model",), severity=severity))
    return out
