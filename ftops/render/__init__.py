"""ftops.render: text, Markdown and JSON views of plans and status, derived from one JSON value."""

from ftops.render.plan import (
    dumps,
    human_bytes,
    money,
    plan_json,
    plan_markdown,
    plan_markdown_parts,
    plan_marker,
    plan_text,
    summary_line,
)

__all__ = ["dumps", "human_bytes", "money", "plan_json", "plan_markdown", "plan_markdown_parts", "plan_marker", "plan_text", "summary_line"]
