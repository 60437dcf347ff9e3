"""Project names: what `ftops init` writes, and which names are placeholders shared by everyone.

The project name goes into every job's metadata (`ftops_project`) and is how ftops finds its own
jobs on the provider. Two repositories with the same name on one account would adopt each other's
jobs, so `init` writes a name unique to the project, and the plan warns about the placeholders.
"""

from __future__ import annotations

import re
import secrets

from .models import NAME_PATTERN

#: Names that many projects share: the implicit default and what `ftops init` wrote before 0.2.
PLACEHOLDER_PROJECTS = frozenset({"default", "starter"})

_MAX = 64
_TAG_LEN = 6
_NAME = re.compile(NAME_PATTERN)


def is_placeholder_project(name: str) -> bool:
    """True for a project name that other repositories on the same account are likely to use too."""
    return name.strip().lower() in PLACEHOLDER_PROJECTS


def unique_project_name(directory_name: str, tag: str | None = None) -> str:
    """`<directory name, sanitised>-<short random tag>`, always matching the project-name pattern.

    `tag` is for tests; by default six random hex digits, so two checkouts of different repositories
    named alike still differ.
    """
    tag = tag if tag is not None else secrets.token_hex(_TAG_LEN // 2)
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", directory_name).strip("-._")
    base = base[: _MAX - len(tag) - 1].rstrip("-._") or "ftops"
    name = f"{base}-{tag}"
    assert _NAME.match(name), name
    return name
