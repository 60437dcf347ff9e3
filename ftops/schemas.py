"""`python -m ftops.schemas`: regenerate every JSON Schema in schemas/ from the pydantic models.

schemas/ftops.schema.json  the configuration (editors complete ftops.yaml with it)
schemas/plan.schema.json   a saved plan (`ftops plan --out FILE`)
schemas/state.schema.json  the state file
A test fails when a committed schema differs from what this writes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _plan() -> dict[str, Any]:
    """Saved plans (`plan --out`) and the `plan --json` view, which adds derived fields."""
    from ftops.engine.model import Plan

    schema = Plan.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ftops plan (saved with --out, or printed with --json)"
    change = schema["$defs"]["ModelChange"]["properties"]
    change["address"] = {"type": "string", "description": "`models.NAME` (--json only)"}
    change["actions"] = {"type": "array", "items": {"enum": ["create", "delete", "no-op"]},
                         "description": "Terraform-style, saying what really happens: [create] for create, replace "
                                        "and retry (a replace deletes nothing: the old fine-tuned model stays), "
                                        "[no-op] otherwise; [delete] only for plans that delete (--json only)"}
    change["action_reason"] = {"type": "string", "description": "same as `reason` (--json only)"}
    change["replaces"] = {"type": "object", "description": "for a replace: the fingerprint (and job) it supersedes; "
                                                           "nothing is deleted (--json only)"}
    change["replace_paths"] = {"type": "array", "items": {"type": "string"},
                               "description": "top-level attributes whose change forced the replace (--json only)"}
    change["before"] = {"anyOf": [{"type": "object"}, {"type": "null"}], "description": "--json only"}
    change["after"] = {"anyOf": [{"type": "object"}, {"type": "null"}], "description": "--json only"}
    schema["properties"]["has_changes"] = {"type": "boolean", "description": "--json only"}
    schema["properties"]["diagnostics"] = {"type": "array", "items": {"type": "object"},
                                           "description": "warnings that concern this plan (--json only)"}
    return schema


def _state() -> dict[str, Any]:
    from ftops.state import State

    schema = State.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ftops state file"
    return schema


def _config() -> dict[str, Any]:
    from ftops.config import config_json_schema

    return config_json_schema()


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "ftops.schema.json": _config,
    "plan.schema.json": _plan,
    "state.schema.json": _state,
}


def render(name: str) -> str:
    if name == "ftops.schema.json":
        from ftops.config.schema import render_schema

        return render_schema()
    return json.dumps(SCHEMAS[name](), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "schemas"
    target.mkdir(parents=True, exist_ok=True)
    for name in SCHEMAS:
        (target / name).write_text(render(name))
        print(f"wrote {target / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
