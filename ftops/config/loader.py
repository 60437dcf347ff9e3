"""Load `ftops.yaml`: parse with positions, interpolate, validate, check dataset paths.

`load_config` reports every problem it finds in one `FtopsError` (parse errors stop early,
because nothing after them is meaningful; validation and path errors are collected together).
Each pydantic error becomes one `Diagnostic` at the YAML position of the offending key or value.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ftops.diagnostics import (
    Diagnostic,
    FtopsError,
    SourceRange,
    did_you_mean,
    error,
    find_api_key,
    has_errors,
    redact_text,
    redacted,
    warning,
)

from .interpolate import chain_upstream, interpolate
from .models import HYPERPARAMETERS_BY_METHOD, FtopsConfig, ProviderConfig
from .secrets import find_secret_values, key_variable_names, secret_values
from .source import NodePosition, Path_, parse_yaml

CONFIG_FILENAME = "ftops.yaml"
MAX_CONFIG_BYTES = 10_000_000
DATASET_FIELDS = ("training_file", "validation_file")
_SECRET_KEYS = {"api_key", "apikey", "api-key", "key", "token", "secret", "password", "openai_api_key"}
_SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "credential")
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UPPER_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")

_OUT_OF_RANGE = {
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_long", "too_short",
    "string_too_long", "string_too_short", "out_of_range",
}


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration plus what is needed to point back into its source."""

    path: Path
    root: Path
    config: FtopsConfig
    source_lines: list[str]
    warnings: list[Diagnostic] = field(default_factory=list)
    positions: Mapping[Path_, NodePosition] = field(default_factory=dict, repr=False)
    display_name: str = CONFIG_FILENAME

    def range_of(self, *keys: str | int) -> SourceRange | None:
        """Position of the value at `keys` (key position for mappings), else the nearest parent's."""
        path: Path_ = tuple(keys)
        while True:
            pos = self.positions.get(path)
            if pos is not None:
                return pos.key or pos.value
            if not path:
                return None
            path = path[:-1]

    def dataset_path(self, model_name: str, which: str) -> Path:
        """Absolute, resolved path of a model's training_file or validation_file."""
        if which not in DATASET_FIELDS:
            raise ValueError(f"which must be one of {DATASET_FIELDS}, got {which!r}")
        rel = getattr(self.config.models[model_name], which)
        if rel is None:
            raise ValueError(f"model {model_name!r} has no {which}")
        return _resolve(self.root, rel)


def find_config(directory: Path) -> Path:
    """The ftops.yaml in `directory` (no search upwards: `-C DIR` says where the project is)."""
    candidate = Path(directory) / CONFIG_FILENAME
    if candidate.is_file():
        return candidate.absolute()
    if candidate.exists():  # a FIFO, a device, a directory: never read (a FIFO would block forever)
        raise FtopsError(_not_a_regular_file(str(candidate), candidate.stat().st_mode))
    others = [p.name for p in Path(directory).glob("ftops.y*ml") if p.name != CONFIG_FILENAME] \
        if Path(directory).is_dir() else []
    hint = f"rename `{others[0]}` to `{CONFIG_FILENAME}`" if others else \
        "run `ftops init` to create a starter project, or pass `-C DIR`"
    raise FtopsError(error(
        "config.not_found", f"no {CONFIG_FILENAME} in {directory}",
        f"ftops looks for {CONFIG_FILENAME} in the working directory (or the one given with -C).",
        hint=hint))


def _file_kind(mode: int) -> str:
    return "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
        "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
        "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def _not_a_regular_file(filename: str, mode: int) -> Diagnostic:
    return error("config.not_a_file", f"{filename} is {_file_kind(mode)}, not a regular file",
                 "ftops reads its configuration from a regular file.",
                 hint=f"replace it with a regular file (`ftops init` writes a starter {CONFIG_FILENAME})")


def _resolve(root: Path, rel: str) -> Path:
    p = Path(os.path.expanduser(rel)) if rel.startswith("~") else Path(rel)
    return (p if p.is_absolute() else root / p).resolve()


def _display_name(path: Path) -> str:
    """Path relative to the working directory when it is below it, else as absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _redact(lines: list[str], positions: Mapping[Path_, NodePosition], secret_paths: Sequence[Path_],
            secrets: Sequence[str] = ()) -> list[str]:
    """Source lines safe to print: the values at `secret_paths`, every secret value and every
    key-like token replaced (diagnostics quote these lines under their message)."""
    out = [redact_text(line, secrets) for line in lines]
    for p in secret_paths:
        pos = positions.get(p)
        if pos and pos.key and 0 < pos.key.line <= len(out):
            line = out[pos.key.line - 1]
            out[pos.key.line - 1] = line[: pos.value.column - 1] + "<redacted>" if pos.value.line == pos.key.line \
                else line
    return out


# --------------------------------------------------------------------------- error mapping


def _allowed_keys(loc: Path_, data: Any) -> list[str]:
    """Field names accepted at `loc` (a path to a mapping), for did-you-mean hints."""
    tp: Any = FtopsConfig
    cur = data
    for part in loc:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp.__name__ == "ModelConfig" and part == "hyperparameters":
                method = cur.get("method", "supervised") if isinstance(cur, dict) else "supervised"
                tp = HYPERPARAMETERS_BY_METHOD.get(method, HYPERPARAMETERS_BY_METHOD["supervised"])
            else:
                f = tp.model_fields.get(str(part))
                if f is None:
                    return []
                tp = f.annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        else:
            return []
        while get_origin(tp) is Union:
            args = [a for a in get_args(tp) if a is not type(None)]
            tp = args[0] if len(args) == 1 else tp
            if len(args) != 1:
                break
        cur = cur.get(part) if isinstance(cur, dict) else (
            cur[part] if isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur) else None)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _is_provider_block(path: Path_) -> bool:
    """`provider` or `providers.NAME`: where a key is most likely to be pasted."""
    return path == ("provider",) or (len(path) == 2 and path[0] == "providers")


def _secret_like_name(key: str) -> bool:
    low = key.lower()
    return low in _SECRET_KEYS or (low not in ("api_key_env",) and any(w in low for w in _SECRET_WORDS))


def _provider_secret_paths(data: Any) -> list[Path_]:
    """Values not to show from the source: secret-named keys and any unknown key of a provider block
    (a misspelt `api_key_env` is often followed by the key itself)."""
    known = set(ProviderConfig.model_fields)
    blocks: list[tuple[Path_, Any]] = [(("provider",), data.get("provider"))]
    providers = data.get("providers")
    if isinstance(providers, dict):
        blocks += [(("providers", k), v) for k, v in providers.items()]
    out: list[Path_] = []
    for path, block in blocks:
        if isinstance(block, dict):
            out += [path + (k,) for k in block if isinstance(k, str) and (k not in known or _secret_like_name(k))]
    return out


def _check_key_variable_names(data: Any, secrets: Mapping[str, str], positions: Mapping[Path_, NodePosition],
                              filename: str) -> tuple[list[Diagnostic], set[Path_]]:
    """`api_key_env` must name a variable; a pasted key (or anything else) is refused without echoing it."""
    fields: list[Path_] = [("provider", "api_key_env")]
    providers = data.get("providers")
    if isinstance(providers, dict):
        fields += [("providers", k, "api_key_env") for k in providers]
    diags: list[Diagnostic] = []
    bad: set[Path_] = set()
    for path in fields:
        block = data.get(path[0]) if len(path) == 2 else (data.get("providers") or {}).get(path[1])
        value = block.get("api_key_env") if isinstance(block, dict) else None
        if not isinstance(value, str):
            continue
        pasted = bool(find_api_key(value)) or value.strip() in secrets or (
            len(value) >= 24 and sum(c.isdigit() for c in value) >= 4 and not _UPPER_NAME.match(value))
        if _VARIABLE_NAME.match(value) and not pasted:
            continue
        bad.add(path)
        pos = positions.get(path)
        rng = pos.value if pos else SourceRange(filename, 1)
        dotted = ".".join(str(p) for p in path)
        if pasted or len(value) >= 24:
            diags.append(error(
                "config.inline_secret", f"`{dotted}` holds what looks like an API key (`{redacted(value)}`), "
                "not a variable name",
                "`api_key_env` names the environment variable the key is read from; the key itself must never be "
                "written in ftops.yaml (it would end up in version control and logs).", range=rng,
                hint="export the key, e.g. `export OPENAI_API_KEY=<key>`, and write `api_key_env: OPENAI_API_KEY`; "
                     "then revoke the pasted key"))
        else:
            diags.append(error(
                "config.invalid_value", f"`{dotted}` must be an environment variable name, got `{redacted(value)}`",
                "A variable name has letters, digits and `_`, and does not start with a digit.", range=rng,
                hint="e.g. `api_key_env: OPENAI_API_KEY`"))
    return diags, bad


def _unknown_field_hint(loc: Path_, key: str, data: Any) -> str:
    parent = loc[:-1]
    if _is_provider_block(parent) and _secret_like_name(key):
        close = did_you_mean(key, _allowed_keys(parent, data))
        return ("never put secrets in ftops.yaml: set `api_key_env: NAME` and export NAME=<key>"
                + (f" ({close})" if close else ""))
    allowed = _allowed_keys(parent, data)
    hint = did_you_mean(key, allowed)
    if hint:
        return hint
    if len(parent) == 3 and parent[0] == "models" and parent[2] == "hyperparameters":
        for method, model in HYPERPARAMETERS_BY_METHOD.items():
            if key in model.model_fields:
                return f"`{key}` is a {method} hyperparameter; set `method: {method}` to use it"
    if len(parent) == 2 and parent[0] == "models" and any(
            key in m.model_fields for m in HYPERPARAMETERS_BY_METHOD.values()):
        return f"`{key}` is a hyperparameter: move it under `hyperparameters:`"
    if allowed:
        return "allowed keys: " + ", ".join(allowed)
    return ""


# pydantic's messages name Python classes ("instance of ModelConfig"); these say it in YAML terms.
_EXPECTED = {
    "model_type": "expected a mapping (key: value pairs)",
    "model_attributes_type": "expected a mapping (key: value pairs)",
    "dict_type": "expected a mapping (key: value pairs)",
    "list_type": "expected a list",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "finite_number": "expected a finite number (not .inf or .nan)",
    "bool_type": "expected true or false",
}


def _join_expected(messages: list[str]) -> str:
    """["expected a string", "expected an integer"] -> "expected a string or an integer"."""
    unique = list(dict.fromkeys(messages))
    if len(unique) == 1:
        return unique[0]
    if all(m.startswith("expected ") for m in unique):
        items = [m[len("expected "):] for m in unique]
        return "expected " + ", ".join(items[:-1]) + " or " + items[-1]
    return "; or ".join(unique)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _strip_union_tags(loc: Path_, data: Any, etype: str) -> tuple[Path_, bool]:
    """Drop the union-member names pydantic inserts into `loc` (`('vars', 'a', 'str')`).

    A part is kept when it is a key/index present in the data, or when it is the last part of a
    `missing` or `extra_forbidden` error. Returns the cleaned path and whether it names a key.
    """
    is_key = bool(loc) and loc[-1] == "[key]"
    parts = loc[:-1] if is_key else loc
    out: list[str | int] = []
    cur = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(cur, dict) and part in cur:  # noqa: SIM114 (mypy narrows each branch)
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
        elif last and etype in ("missing", "extra_forbidden") and isinstance(cur, dict):
            out.append(part)
        # anything else is a union tag or a validator's function name: skip it
    return tuple(out), is_key


def _merge_union_errors(errors: list[Any], data: Any) -> list[dict[str, Any]]:
    """One error per (cleaned) location: a failed union yields one error per member otherwise."""
    merged: dict[tuple[Path_, bool], dict[str, Any]] = {}
    for err in errors:
        loc, is_key = _strip_union_tags(tuple(err["loc"]), data, err["type"])
        if err["type"] in ("missing", "extra_forbidden"):
            merged[(loc + (err["type"],), is_key)] = {**err, "loc": loc, "is_key": is_key}
            continue
        slot = (loc, is_key)
        if slot in merged:
            merged[slot]["alternatives"].append((err["type"], err["msg"]))
            continue
        merged[slot] = {**err, "loc": loc, "is_key": is_key, "alternatives": [(err["type"], err["msg"])]}
    return list(merged.values())


def _diagnostics_from_validation(exc: ValidationError, data: Any, positions: Mapping[Path_, NodePosition],
                                 filename: str, env_paths: set[Path_]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    root = positions.get(())
    fallback = root.value if root else SourceRange(filename, 1, 1)

    def where(path: Path_, *, key: bool) -> SourceRange:
        p = path
        while p not in positions and p:
            p = p[:-1]
        pos = positions.get(p)
        if pos is None:
            return fallback
        if p != path or key:
            return pos.key or pos.value
        return pos.value

    seen: set[tuple[str, Path_]] = set()
    for err in _merge_union_errors(exc.errors(include_url=False), data):
        etype = err["type"]
        ctx = err.get("ctx") or {}
        is_key = bool(err.get("is_key"))
        loc: Path_ = err["loc"]
        address = f"models.{loc[1]}" if len(loc) >= 2 and loc[0] == "models" else ""
        hint = str(ctx.get("hint", "")) if isinstance(ctx, dict) else ""
        where_loc = loc
        if isinstance(ctx, dict) and ctx.get("field"):
            extra = tuple(str(ctx["field"]).split("."))
            where_loc = loc + (extra[1:] if loc and extra[0] == loc[-1] else extra)
        if isinstance(ctx, dict) and ctx.get("key") and loc + (ctx["key"],) in positions:
            where_loc, is_key = loc + (ctx["key"],), True
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        if etype == "extra_forbidden":
            key = str(loc[-1])
            code = "config.unknown_field"
            summary = f"unknown key `{key}`"
            detail = f"`{key}` is not a valid key in {'.'.join(str(p) for p in loc[:-1]) or 'the top level'}."
            hint = _unknown_field_hint(loc, key, data)
            if hint.startswith("never put secrets"):
                code, summary = "config.inline_secret", f"`{key}` must not be written in ftops.yaml"
                detail = "Secrets in YAML end up in version control and logs."
            rng = where(loc, key=True)
        elif etype == "missing":
            code = "config.missing_field"
            summary = err["msg"] if err["msg"] != "Field required" else f"missing required key `{loc[-1]}`"
            parent = loc[:-1] if err["msg"] == "Field required" else loc
            detail = f"{dotted} is required." if err["msg"] == "Field required" else ""
            rng = where(parent, key=True)
        else:
            code = "config.out_of_range" if etype in _OUT_OF_RANGE else "config.invalid_value"
            msg = err["msg"]
            if etype in ("invalid_value", "out_of_range"):
                summary, detail = msg, ""
            else:
                summary = f"invalid value for `{dotted}`" if not is_key else f"invalid key `{loc[-1]}`"
                msg = _join_expected([_EXPECTED.get(t, m) for t, m in err.get("alternatives", [(etype, msg)])])
                detail = f"{msg[0].upper()}{msg[1:]} (got {_short(err.get('input'))})."
                if etype == "string_pattern_mismatch" and is_key and len(loc) == 2 and loc[0] == "models":
                    detail = ("Model names start with a letter or digit and contain only letters, digits, "
                              "`_`, `.` and `-` (at most 64 characters).")
            inp = err.get("input")
            if not hint and isinstance(inp, bool) and etype in ("string_type", "int_type", "float_type"):
                hint = "YAML reads yes/no/on/off/true/false as booleans; quote it or write a number"
            elif not hint and etype == "string_type" and isinstance(inp, (int, float)):
                hint = f"quote it to make it a string: '{inp}'"
            elif not hint and isinstance(inp, str) and etype in ("int_type", "float_type"):
                hint = "write the number without quotes"
                if loc in env_paths:
                    hint = "this value comes from ${env...}: set the variable to a plain number, e.g. 42"
            elif not hint and etype == "literal_error" and isinstance(inp, str) and isinstance(ctx, dict):
                expected = [e.strip().strip("'") for e in str(ctx.get("expected", "")).replace(" or ", ",").split(",")]
                hint = did_you_mean(inp, [e for e in expected if e])
            rng = where(where_loc, key=is_key)
        if (code, where_loc) in seen and code == "config.missing_field":
            continue
        seen.add((code, where_loc))
        out.append(error(code, summary, detail, range=rng, hint=hint, address=address))
    out.sort(key=lambda d: (d.range.line, d.range.column) if d.range else (0, 0))
    return out


def _as_text_where_strings_wanted(exc: ValidationError, data: Any, typed: Mapping[Path_, str]) -> Any | None:
    """`data` with interpolated values typed from their text (`${env.BUILD}` -> 42) put back as that
    text wherever the field wants a string; None when no error is of that kind."""
    fix: dict[Path_, str] = {}
    for err in exc.errors(include_url=False):
        if err["type"] != "string_type":
            continue
        loc, _ = _strip_union_tags(tuple(err["loc"]), data, err["type"])
        if loc in typed:
            fix[loc] = typed[loc]
    if not fix:
        return None

    def put(value: Any, path: Path_) -> Any:
        if path in fix:
            return fix[path]
        if isinstance(value, dict):
            return {k: put(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [put(v, path + (i,)) for i, v in enumerate(value)]
        return value

    return put(data, ())


# --------------------------------------------------------------------------- dataset paths


def _close_files(directory: Path, name: str) -> str:
    try:
        names = [p.name for p in directory.iterdir()] if directory.is_dir() else []
    except OSError:
        names = []
    return did_you_mean(name, names)


def _check_dataset(root: Path, model: str, which: str, rel: str, rng: SourceRange | None,
                   allow_external: bool) -> list[Diagnostic]:
    address = f"models.{model}"
    out: list[Diagnostic] = []
    given = Path(os.path.expanduser(rel)) if rel.startswith("~") else Path(rel)
    lexical = given if given.is_absolute() else root / given
    try:
        resolved = lexical.resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
        loop = isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP
        return [error("config.dataset_unreadable",
                      f"{which} `{rel}` " + ("is a symlink loop" if loop else f"cannot be resolved: {exc}"),
                      "following its symbolic links leads back to where they started." if loop else "",
                      range=rng, hint="point it at the real file (`ls -l` shows where each link points)",
                      address=address)]
    if not allow_external:
        reason = ""
        if given.is_absolute():
            reason = "it is an absolute path"
        elif ".." in given.parts and not _inside(Path(os.path.normpath(lexical)), root):
            reason = "it leaves the project directory through `..`"
        elif not _inside(resolved, root.resolve()):
            reason = "it resolves (through a symlink) outside the project directory"
        if reason:
            out.append(error(
                "config.path_outside_project", f"{which} `{rel}` is outside the project directory",
                f"{reason}; ftops only reads datasets below {root} unless told otherwise.",
                range=rng, hint="move the file into the project, or set `allow_external_paths: true`",
                address=address))
            return out
    try:
        st = resolved.stat()
    except FileNotFoundError:
        close = _close_files(resolved.parent, resolved.name)
        if close:
            suggestion = str(Path(rel).parent / close.split("`")[1])
            hint = f"did you mean `{suggestion}`?"
        else:
            hint = f"create it, or fix the path (relative to {root})"
        return [error("config.dataset_not_found", f"{which} `{rel}` does not exist",
                      f"looked for {resolved}", range=rng, hint=hint, address=address)]
    except OSError as exc:
        loop = exc.errno == errno.ELOOP
        return [error("config.dataset_unreadable",
                      f"{which} `{rel}` " + ("is a symlink loop" if loop else f"cannot be read: {exc.strerror}"),
                      range=rng, address=address, hint=_unreadable_hint(exc))]
    if not stat.S_ISREG(st.st_mode):
        kind = _file_kind(st.st_mode)
        return [error("config.dataset_not_a_file", f"{which} `{rel}` is {kind}, not a regular file",
                      "A dataset must be a regular JSONL file.", range=rng,
                      hint="point to a .jsonl file" + (" inside it" if kind == "a directory" else ""),
                      address=address)]
    if not os.access(resolved, os.R_OK):  # checked without opening: a warm plan reads no dataset at all
        denied = PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(resolved))
        return [error("config.dataset_unreadable", f"{which} `{rel}` cannot be read: {denied.strerror}",
                      f"{resolved} is not readable by this user.", range=rng, address=address,
                      hint=_unreadable_hint(denied))]
    if resolved.suffix.lower() != ".jsonl":
        out.append(warning("config.dataset_extension", f"{which} `{rel}` does not end in .jsonl",
                           "Fine-tuning datasets are JSON Lines files; the API expects .jsonl.",
                           range=rng, hint="rename the file to .jsonl", address=address))
    return out


def _non_finite_numbers(data: Any, positions: Mapping[Path_, NodePosition],
                        filename: str) -> tuple[list[Diagnostic], set[Path_]]:
    """`.inf`, `-.inf` and `.nan` anywhere (graders and response formats included): no provider
    accepts them and JSON cannot carry them, so they are refused where they are written."""
    diags: list[Diagnostic] = []
    paths: set[Path_] = set()

    def walk(value: Any, path: Path_) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            pos = positions.get(path)
            dotted = ".".join(str(p) for p in path)
            address = f"models.{path[1]}" if len(path) >= 2 and path[0] == "models" else ""
            diags.append(error(
                "config.non_finite_number", f"`{dotted}` is {value!r}, not a finite number",
                "YAML reads `.inf`, `-.inf` and `.nan` as special floats; no setting accepts them and JSON cannot "
                "represent them.", range=pos.value if pos else SourceRange(filename, 1),
                hint="write an ordinary number", address=address))
            paths.add(path)
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, path + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, path + (i,))

    walk(data, ())
    return diags, paths


def _redact_diagnostic(d: Diagnostic, secrets: Sequence[str]) -> Diagnostic:
    """Whatever path produced it (a pydantic message quoting the input, a did-you-mean), a
    diagnostic never carries a secret value or a key-like token."""
    summary, detail, hint = (redact_text(t, secrets) for t in (d.summary, d.detail, d.hint))
    if (summary, detail, hint) == (d.summary, d.detail, d.hint):
        return d
    return dataclasses.replace(d, summary=summary, detail=detail, hint=hint)


def _provider_blocks(data: Any) -> list[tuple[Path_, dict[str, Any]]]:
    blocks: list[tuple[Path_, Any]] = [(("provider",), data.get("provider"))]
    providers = data.get("providers")
    if isinstance(providers, dict):
        blocks += [(("providers", k), v) for k, v in providers.items()]
    return [(p, b) for p, b in blocks if isinstance(b, dict)]


def _check_provider_paths(data: Any, root: Path, positions: Mapping[Path_, NodePosition],
                          allow_external: bool) -> list[Diagnostic]:
    """`base_url: ''` (would silently mean api.openai.com) and a `db` outside the project (would
    create files anywhere the process may write)."""
    out: list[Diagnostic] = []
    for path, block in _provider_blocks(data):
        dotted = ".".join(str(p) for p in path)
        url = block.get("base_url")
        if isinstance(url, str) and not url.strip():
            pos = positions.get(path + ("base_url",))
            out.append(error(
                "config.invalid_value", f"`{dotted}.base_url` is empty",
                "An empty base_url would fall back to $OPENAI_BASE_URL or api.openai.com without saying so.",
                range=pos.value if pos else None,
                hint="write the endpoint (e.g. https://api.openai.com/v1), or remove the key for the default"))
        db = block.get("db")
        if not isinstance(db, str) or not db:
            continue
        pos = positions.get(path + ("db",))
        rng = pos.value if pos else None
        given = Path(os.path.expanduser(db)) if db.startswith("~") else Path(db)
        lexical = Path(os.path.normpath(given if given.is_absolute() else root / given))
        try:
            resolved = lexical.resolve()
        except (RuntimeError, OSError):
            resolved = lexical
        if not allow_external and not (_inside(lexical, root) and _inside(resolved, root.resolve())):
            out.append(error(
                "config.path_outside_project", f"`{dotted}.db` `{db}` is outside the project directory",
                f"ftops only creates files below {root} unless told otherwise.", range=rng,
                hint="use a path inside the project (default .ftops/sandbox.db), or set `allow_external_paths: true`"))
            continue
        try:
            mode = resolved.stat().st_mode
        except OSError:
            continue  # created on first use
        if not stat.S_ISREG(mode):
            out.append(error(
                "config.invalid_value", f"`{dotted}.db` `{db}` is {_file_kind(mode)}, not a regular file",
                "The sandbox keeps its database in this file.", range=rng,
                hint="point it at a file path (it is created when missing)"))
    return out


def _unreadable_hint(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "make it readable by this user (e.g. `chmod u+r FILE`)"
    if exc.errno == errno.ELOOP:
        return "point it at the real file (`ls -l` shows where each link points)"
    return "check the file and the disk it is on"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- entry point


def load_config(path: Path, *, environ: Mapping[str, str] | None = None,
                variables: Mapping[str, str] | None = None) -> LoadedConfig:
    """Load and validate ftops.yaml; raise FtopsError carrying every diagnostic found.

    `variables` (`ftops --var KEY=VALUE`) override declared `vars:`. The error also carries
    `source_lines` (with any inline secret redacted) so the CLI can show the offending lines.
    """
    path = Path(path)
    abs_path = path.absolute()
    filename = str(path) if not path.is_absolute() else _display_name(abs_path)
    env = os.environ if environ is None else environ

    def fail(diags: list[Diagnostic], lines: list[str]) -> FtopsError:
        exc = FtopsError(diags)
        exc.source_lines = lines  # type: ignore[attr-defined]
        return exc

    try:
        st = abs_path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise FtopsError(_not_a_regular_file(filename, st.st_mode))
        if st.st_size > MAX_CONFIG_BYTES:
            raise FtopsError(error(
                "config.too_large", f"{filename} is larger than {MAX_CONFIG_BYTES // 1_000_000} MB",
                "A configuration file this large is almost certainly not an ftops.yaml.",
                hint="check that -C points at the project directory"))
        raw = abs_path.read_bytes()
    except FileNotFoundError:
        raise FtopsError(error("config.not_found", f"{filename} does not exist",
                               hint="run `ftops init` to create a starter project")) from None
    except IsADirectoryError:
        raise FtopsError(error("config.not_a_file", f"{filename} is a directory")) from None
    except OSError as exc:
        raise FtopsError(error("config.unreadable", f"cannot read {filename}: {exc.strerror}")) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FtopsError(error("config.encoding", f"{filename} is not valid UTF-8",
                               f"invalid byte at offset {exc.start}", range=SourceRange(filename, line, 1),
                               hint="save the file as UTF-8")) from None
    lines = text.splitlines()

    parsed = parse_yaml(text, filename)
    if has_errors(parsed.diagnostics) and parsed.data is None:
        raise fail(parsed.diagnostics, lines)
    data: dict[str, Any] = parsed.data
    positions = parsed.positions
    diags: list[Diagnostic] = list(parsed.diagnostics)

    secret_env = key_variable_names(data)
    secrets = secret_values(env, secret_env)
    lines = _redact(lines, positions, _provider_secret_paths(data), list(secrets))

    interp = interpolate(data, env, positions, filename, set(secret_env), overrides=variables)
    diags.extend(interp.diagnostics)
    # By value, after interpolation: `api_key_env: ${env.X}` names a key variable only now, and a key
    # can arrive through any variable, `vars` or a literal.
    secrets.update({v: n for v, n in secret_values(env, key_variable_names(interp.data)).items() if v not in secrets})
    key_name_diags, bad_key_names = _check_key_variable_names(interp.data, secrets, positions, filename)
    value_diags, value_paths = find_secret_values(interp.data, secrets, positions, filename)
    reported = set(_provider_secret_paths(interp.data))  # already refused as an unknown or secret key
    value_diags = [d for d, p in zip(value_diags, value_paths) if p not in reported]
    lines = _redact(lines, positions, sorted(bad_key_names, key=str))
    number_diags, bad_numbers = _non_finite_numbers(interp.data, positions, filename)
    diags.extend(key_name_diags + value_diags + number_diags)
    own = {positions[p].value for p in bad_key_names | bad_numbers if p in positions}  # reported above
    config: FtopsConfig | None = None
    if not has_errors(interp.diagnostics):
        try:
            config = FtopsConfig.model_validate(interp.data)
        except ValidationError as exc:
            retyped = _as_text_where_strings_wanted(exc, interp.data, interp.typed_from_text)
            try:
                if retyped is None:
                    raise
                interp.data = retyped
                config = FtopsConfig.model_validate(retyped)
            except ValidationError as exc2:
                diags.extend(d for d in _diagnostics_from_validation(exc2, interp.data, positions, filename,
                                                                     interp.env_paths)
                             if d.range not in own)

    root = abs_path.parent
    # Checked on the raw data so path errors are reported together with validation errors.
    models = interp.data.get("models")
    allow_external = interp.data.get("allow_external_paths") is True
    for name, model in (models.items() if isinstance(models, dict) else ()):
        for which in DATASET_FIELDS:
            rel = model.get(which) if isinstance(model, dict) else None
            if isinstance(rel, str) and rel:
                pos = positions.get(("models", name, which))
                diags.extend(_check_dataset(root, str(name), which, rel, pos.value if pos else None,
                                            allow_external))
    diags.extend(_check_provider_paths(interp.data, root, positions, allow_external))
    if config is not None:
        diags.extend(_check_chains(config, positions))
    diags.sort(key=lambda d: (d.range.line, d.range.column) if d.range else (0, 0))
    diags = [_redact_diagnostic(d, list(secrets)) for d in diags]
    if has_errors(diags) or config is None:
        raise fail(diags, lines)
    return LoadedConfig(path=abs_path, root=root, config=config, source_lines=lines,
                        warnings=[d for d in diags if not d.is_error], positions=positions,
                        display_name=filename)


def upstream_order(names: Iterable[str], upstream: Callable[[str], str | None]) -> list[str]:
    """`names` by name, except that each comes after the one it continues from (`upstream(name)`, None
    where it starts from a base model); a cycle is cut where it closes. Used for config and plan alike."""
    out: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        up = upstream(name)
        if up is not None:
            visit(up)
        out.append(name)

    for name in sorted(names):
        visit(name)
    return out


def chain_root(name: str, upstream: Callable[[str], str | None]) -> str:
    """The model at the head of `name`'s chain (`name` itself when it is not chained)."""
    seen = {name}
    while (up := upstream(name)) is not None and up not in seen:
        seen.add(up)
        name = up
    return name


def _declared_upstream(config: FtopsConfig) -> Callable[[str], str | None]:
    def upstream(name: str) -> str | None:
        up = chain_upstream(config.models[name].base_model)
        return up if up in config.models else None
    return upstream


def chain_order(config: FtopsConfig) -> list[str]:
    """Declared model names, each after the model its `base_model` continues from (then by name)."""
    return upstream_order(config.models, _declared_upstream(config))


def root_base_model(config: FtopsConfig, name: str) -> str:
    """The base model at the start of a chain (the model a chained model's family and price come from)."""
    return config.models[chain_root(name, _declared_upstream(config))].base_model


def _check_chains(config: FtopsConfig, positions: Mapping[Path_, NodePosition]) -> list[Diagnostic]:
    """`base_model: ${models.NAME.fine_tuned_model}`: NAME declared, on the same provider entry, no cycle."""
    out: list[Diagnostic] = []
    ups = {n: chain_upstream(m.base_model) for n, m in config.models.items()}

    def where(name: str) -> SourceRange | None:
        pos = positions.get(("models", name, "base_model"))
        return pos.value if pos else None

    for name, up in sorted(ups.items()):
        if up is None:
            continue
        if up not in config.models:
            out.append(error("config.unknown_model_reference", f"models.{name} continues from undeclared model `{up}`",
                             "`${models.NAME.fine_tuned_model}` must name a model declared in this file.",
                             range=where(name), hint=did_you_mean(up, list(config.models)) or "declare it first",
                             address=f"models.{name}"))
        elif config.provider_of(up)[0] != config.provider_of(name)[0]:
            out.append(error("config.chain_across_providers",
                             f"models.{name} continues from models.{up} on another provider",
                             f"models.{name} is on `{config.provider_of(name)[0]}`, models.{up} on "
                             f"`{config.provider_of(up)[0]}`; a fine-tuned model can only be trained further "
                             "where it lives.", range=where(name), hint=f"put both on the same provider entry",
                             address=f"models.{name}"))
    reported: set[str] = set()
    for start in sorted(ups):
        path: list[str] = [start]
        nxt = ups.get(start)
        while nxt is not None and nxt in ups and nxt not in path:
            path.append(nxt)
            nxt = ups.get(nxt)
        if nxt is not None and nxt in path:
            cycle = path[path.index(nxt):]
            if not set(cycle) & reported:
                reported |= set(cycle)
                first = min(cycle)
                i = cycle.index(first)
                ring = cycle[i:] + cycle[:i] + [first]
                out.append(error("config.chain_cycle", "models continue from each other in a cycle",
                                 "cycle (each continues from the next): " + " → ".join(f"models.{n}" for n in ring) + "; none of them can start.",
                                 range=where(first), hint="make one of them start from a base model",
                                 address=f"models.{first}"))
    return out
