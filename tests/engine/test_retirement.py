"""The announced-ends review as data in, data out: capabilities and catalogues only, one `today`."""

from __future__ import annotations

import datetime

from ftops.engine.model import DatasetRef, DesiredModel, ModelAction, ModelChange, Plan
from ftops.engine.retirement import base_model_end, check_base_models, review_deadlines
from ftops.providers import Capabilities, Cutoff, RemoteModel
from ftops.state import State

SRC = "test source"
CAPS = Capabilities(name="p", title="P", new_jobs_until=Cutoff(date=datetime.date(2027, 1, 6), source=SRC),
                    model_shutdowns={"base-1": Cutoff(date=datetime.date(2027, 1, 14), source=SRC)})
LOOSE = Capabilities(name="q", title="Q", new_jobs_until=Cutoff(date=datetime.date(2027, 1, 6), source=SRC,
                                                                exact=False))


def _desired(name: str = "m", base: str = "base-1", provider: str = "default") -> DesiredModel:
    ds = DatasetRef(path="t.jsonl", sha256="0" * 64, bytes=1)
    return DesiredModel(name=name, provider=provider, fingerprint="f", group="g", seed=1, seed_declared=False,
                        attributes={"base_model": base}, body={}, training=ds)


def _plan(action: ModelAction, provider: str = "default") -> Plan:
    return Plan(project="x", provider="p", endpoint="", state_lineage="l", state_serial=0,
                models=[ModelChange(name="m", provider=provider, action=action, reason="r")])


def test_deadlines_warnings_and_refusal_on_a_real_provider() -> None:
    today = datetime.date(2027, 2, 1)
    plan, refusals = review_deadlines(_plan(ModelAction.CREATE), [_desired()], State(), {"default": CAPS}, {},
                                      today, {"default": ""})
    kinds = {d.kind: d for d in plan.models[0].deadlines}
    assert kinds["base_model_retires"].days == -18 and kinds["new_jobs_end"].days == -26
    assert {r.code for r in refusals} == {"plan.cutoff_passed"} and all(r.severity == "error" for r in refusals)
    assert {r.path for r in refusals} == {("provider",), ("base_model",)}


def test_sandbox_without_rehearsal_and_no_earlier_than_dates_only_warn() -> None:
    today = datetime.date(2027, 2, 1)
    _, on_sandbox = review_deadlines(_plan(ModelAction.CREATE), [_desired()], State(), {"default": CAPS}, {},
                                     today, {"default": "the sandbox"})
    assert on_sandbox and all(r.severity == "warning" for r in on_sandbox)
    _, loose = review_deadlines(_plan(ModelAction.CREATE), [_desired()], State(), {"default": LOOSE}, {},
                                today, {"default": ""})
    assert loose and all(r.severity == "warning" for r in loose)


def test_no_job_to_create_is_never_refused_and_days_count_down() -> None:
    plan, refusals = review_deadlines(_plan(ModelAction.NOOP), [_desired()], State(), {"default": CAPS}, {},
                                      datetime.date(2027, 1, 4), {"default": ""})
    assert refusals == []
    assert [(w["code"], w["days"]) for w in plan.warnings] == [("plan.provider_closing", 2),
                                                               ("plan.base_model_retires", 10)]


def test_the_catalogue_wins_over_the_declaration() -> None:
    cat = {"base-1": RemoteModel(id="base-1", shutdown_date="2026-12-01"),
           "base-2": RemoteModel(id="base-2", shutdown_date=1798761600, dates_exact=False)}
    end = base_model_end(CAPS, cat, "base-1")
    assert end is not None and end.date == datetime.date(2026, 12, 1) and "catalogue" in end.source
    end2 = base_model_end(CAPS, cat, "base-2")
    assert end2 is not None and end2.date == datetime.date(2027, 1, 1) and not end2.exact
    assert base_model_end(CAPS, None, "base-1") == CAPS.model_shutdowns["base-1"]


def test_base_model_check_online_is_an_error_offline_a_warning() -> None:
    cat = {"base-1": RemoteModel(id="base-1")}
    (online,) = check_base_models([_desired(base="base-l")], {"default": CAPS}, {"default": cat}, set())
    assert online.severity == "error" and online.hint == "did you mean `base-1`?"
    (offline,) = check_base_models([_desired(base="base-l")], {"default": CAPS}, {}, set())
    assert offline.severity == "warning"
    assert check_base_models([_desired(base="ft:base-1:me::x")], {"default": CAPS}, {"default": cat},
                             {"ft:base-1:me::x"}) == []


def test_a_chain_carries_its_first_base_models_end_down() -> None:
    """models.b trains on models.a's fine-tuned model: it retires with a's base, and a job for b after
    that date is refused like one for a."""
    a = _desired("a")
    b = _desired("b", base="ft:base-1:x:a:1").model_copy(update={"upstream": "a"})
    plan = Plan(project="x", provider="p", endpoint="", state_lineage="l", state_serial=0,
                models=[ModelChange(name=n, provider="default", action=ModelAction.CREATE, reason="r")
                        for n in ("a", "b")])
    out, refusals = review_deadlines(plan, [a, b], State(), {"default": CAPS}, {}, datetime.date(2027, 1, 4),
                                     {"default": ""})
    ends = {m.name: {d.kind: d.date for d in m.deadlines} for m in out.models}
    assert ends["b"]["base_model_retires"] == ends["a"]["base_model_retires"] == "2027-01-14"
    [w] = [w for w in out.warnings if w["code"] == "plan.base_model_retires" and w["model"] == "b"]
    assert "models.a" in w["summary"] and "base-1" in w["summary"]
    _, late = review_deadlines(plan, [a, b], State(), {"default": CAPS}, {}, datetime.date(2027, 2, 1),
                               {"default": ""})
    assert {(r.model, r.path) for r in late if r.path == ("base_model",)} == {("a", ("base_model",)),
                                                                             ("b", ("base_model",))}
