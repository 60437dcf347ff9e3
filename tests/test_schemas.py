"""The committed JSON Schemas match the models (regenerate with `python -m ftops.schemas`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftops.schemas import SCHEMAS, render

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_is_up_to_date(name: str) -> None:
    committed = (SCHEMA_DIR / name).read_text()
    assert committed == render(name), f"schemas/{name} is stale: run `python -m ftops.schemas`"


def test_readme_provider_table_is_generated_from_the_capabilities() -> None:
    from ftops.schemas import TABLE_START, readme_with_provider_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert TABLE_START in readme
    assert readme_with_provider_table(readme) == readme, "run `python -m ftops.schemas` to regenerate the table"
    assert "| `together` | Together AI |" in readme
