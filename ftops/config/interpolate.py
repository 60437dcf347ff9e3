"""`${vars.NAME}` and `${env.NAME}` / `${env.NAME:-default}` substitution in string values.

Runs on the parsed YAML before validation so the models only ever see final values. A string
that is exactly one reference takes a type: `${vars.NAME}` the variable's (`n_epochs: ${vars.epochs}`
stays an int), `${env.NAME}` the one its text has as a YAML 1.2 core scalar (`42` an int, `0.5` a
float, `true`/`false` a bool, anything else a string), so `seed: ${env.SEED}` works. The loader turns
such a value back into its text where the field wants a string (`suffix: ${env.BUILD}` with BUILD=42).
A reference inside a longer string is always text. `$${` writes a literal `${`. Keys are never
interpolated. `${models.NAME.fine_tuned_model}` (a chain: continue training from another declared
model) is kept as written, only as a model's whole `base_model`; the loader checks what it names
and the engine resolves it once the upstream job succeeded. `vars` values may use `${env...}` but not other vars, so there is no evaluation order
to get wrong and no cycle to detect. `overrides` (`ftops --var KEY=VALUE`) replace declared `vars`
and are typed like env values.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ftops.diagnostics import Diagnostic, SourceRange, did_you_mean, error

from .source import NodePosition, Path_

_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_MODEL_REF = re.compile(r"^models\.([A-Za-z0-9][A-Za-z0-9_.-]*?)\.fine_tuned_model$")
_INNER = re.compile(r"^(vars|env)\.([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
# YAML 1.2 core schema (not 1.1: `yes`, `0o17`, `1_000` and `1:30` stay strings); no .inf/.nan.
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


def chain_upstream(value: object) -> str | None:
    """The model a `base_model: ${models.NAME.fine_tuned_model}` continues from, else None."""
    if not isinstance(value, str):
        return None
    whole = _REF.fullmatch(value.strip())
    m = _MODEL_REF.match(whole.group(1).strip()) if whole and whole.group(1) is not None else None
    return m.group(1) if m else None


def typed_scalar(text: str) -> Any:
    """`text` as a YAML 1.2 core scalar: int, float or bool when it reads as one, else the string."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return _BOOL.get(text, text)


@dataclass
class InterpolationResult:
    data: Any
    diagnostics: list[Diagnostic] = field(default_factory=list)
    env_paths: set[Path_] = field(default_factory=set)  # values that came (wholly) from env
    # values typed from their text (`${env.SEED}` -> 42): path -> the text, for fields that want a string
    typed_from_text: dict[Path_, str] = field(default_factory=dict)


class _Interpolator:
    def __init__(self, variables: Mapping[str, Any], environ: Mapping[str, str],
                 positions: Mapping[Path_, NodePosition], filename: str,
                 secret_env: Collection[str] = ()) -> None:
        self.secret_env = frozenset(secret_env)
        self.vars = variables
        self.environ = environ
        self.positions = positions
        self.filename = filename
        self.diagnostics: list[Diagnostic] = []
        self.env_paths: set[Path_] = set()
        self.typed_from_text: dict[Path_, str] = {}
        self.var_texts: dict[str, str] = {}  # variables typed from text (env or --var): name -> text

    def _where(self, path: Path_) -> SourceRange | None:
        pos = self.positions.get(path)
        return pos.value if pos else None

    def _resolve(self, inner: str, path: Path_, allow_vars: bool) -> tuple[bool, Any]:
        if _MODEL_REF.match(inner.strip()):
            self.diagnostics.append(error(
                "config.bad_interpolation", f"`${{{inner}}}` can only be a model's whole `base_model`",
                "A reference to another model's fine-tuned model continues training from it (a chain); it "
                "is known only after that model's job succeeded, so it cannot be part of another value.",
                range=self._where(path), hint=f"write `base_model: ${{{inner.strip()}}}`"))
            return False, None
        m = _INNER.match(inner.strip())
        if not m:
            self.diagnostics.append(error(
                "config.bad_interpolation", f"unsupported interpolation `${{{inner}}}`",
                "Only `${vars.NAME}`, `${env.NAME}`, `${env.NAME:-default}` and (as a `base_model`) "
                "`${models.NAME.fine_tuned_model}` are supported.",
                range=self._where(path), hint="write `$${` for a literal `${`"))
            return False, None
        kind, name, default = m.group(1), m.group(2), m.group(3)
        if kind == "vars":
            if not allow_vars:
                self.diagnostics.append(error(
                    "config.bad_interpolation", f"`${{vars.{name}}}` cannot be used inside `vars`",
                    "Values in `vars` may use `${env...}` only.", range=self._where(path)))
                return False, None
            if name not in self.vars:
                hint = did_you_mean(name, self.vars) or (
                    f"declare it under `vars:` (e.g. `vars: {{{name}: ...}}`)")
                self.diagnostics.append(error(
                    "config.unknown_variable", f"unknown variable `vars.{name}`",
                    "Defined variables: " + (", ".join(sorted(self.vars)) or "none") + ".",
                    range=self._where(path), hint=hint))
                return False, None
            value = self.vars[name]
            if name in self.var_texts:
                self.typed_from_text[path] = self.var_texts[name]
            return True, value
        if name in self.secret_env:
            self.diagnostics.append(error(
                "config.secret_interpolation", f"`${{env.{name}}}` would copy the API key into the configuration",
                "The API key variable may only be read by the provider client; values in ftops.yaml end up "
                "in job metadata, plans and logs.", range=self._where(path),
                hint="remove this reference; the key is read from the environment automatically"))
            return False, None
        if name in self.environ:
            return True, self.environ[name]
        if default is not None:
            return True, default
        self.diagnostics.append(error(
            "config.env_not_set", f"environment variable `{name}` is not set",
            f"`${{env.{name}}}` has no value and no default.", range=self._where(path),
            hint=f"export {name}=... or write `${{env.{name}:-default}}`"))
        return False, None

    def string(self, text: str, path: Path_, allow_vars: bool) -> Any:
        if "$" not in text:
            return text
        whole = _REF.fullmatch(text)
        if len(path) == 3 and path[0] == "models" and path[2] == "base_model" and chain_upstream(text):
            return text  # a chain: resolved by the engine once the upstream job succeeded
        if whole and whole.group(0) != "$${":
            ok, value = self._resolve(whole.group(1), path, allow_vars)
            if ok and whole.group(1).strip().startswith("env."):
                self.env_paths.add(path)
                typed = typed_scalar(value)
                if typed is not value:
                    self.typed_from_text[path] = value
                value = typed
            return value if ok else text

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            ok, value = self._resolve(m.group(1), path, allow_vars)
            if not ok:
                return m.group(0)
            if isinstance(value, bool):
                return "true" if value else "false"
            return str(value)

        return _REF.sub(sub, text)

    def walk(self, value: Any, path: Path_, allow_vars: bool) -> Any:
        if isinstance(value, str):
            return self.string(value, path, allow_vars)
        if isinstance(value, dict):
            return {k: self.walk(v, path + (k,), allow_vars) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, path + (i,), allow_vars) for i, v in enumerate(value)]
        return value


def interpolate(data: dict[str, Any], environ: Mapping[str, str],
                positions: Mapping[Path_, NodePosition], filename: str,
                secret_env: Collection[str] = (), overrides: Mapping[str, str] | None = None) -> InterpolationResult:
    """Substitute references everywhere; `vars` first (env only), then the rest.

    References to `secret_env` (the API key variables) are errors, so a key never lands in a value.
    `overrides` (from `--var KEY=VALUE`) replace declared variables; an undeclared one is an error,
    so a typo never goes unnoticed.
    """
    raw_vars = data.get("vars")
    it = _Interpolator({}, environ, positions, filename, secret_env)
    resolved_vars: dict[str, Any] = {}
    if isinstance(raw_vars, dict):
        resolved_vars = {k: it.walk(v, ("vars", k), allow_vars=False) for k, v in raw_vars.items()}
        it.var_texts = {str(p[1]): t for p, t in it.typed_from_text.items() if len(p) == 2 and p[0] == "vars"}
    for key, text in (overrides or {}).items():
        if key not in resolved_vars:
            declared = [k for k in resolved_vars if isinstance(k, str)]
            rng = positions.get(("vars",))
            it.diagnostics.append(error(
                "config.unknown_variable", f"--var {key}: no variable `{key}` is declared",
                "Defined variables: " + (", ".join(sorted(declared)) or "none") + ".",
                range=rng.key if rng else None,
                hint=did_you_mean(key, declared) or f"declare it under `vars:` (e.g. `vars: {{{key}: ...}}`)"))
            continue
        resolved_vars[key] = typed_scalar(text)
        if resolved_vars[key] is not text:
            it.var_texts[key] = text
        else:
            it.var_texts.pop(key, None)
    it.vars = {k: v for k, v in resolved_vars.items() if isinstance(k, str)}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[key] = resolved_vars if key == "vars" and isinstance(raw_vars, dict) else \
            it.walk(value, (key,), allow_vars=True)
    return InterpolationResult(out, it.diagnostics, it.env_paths, it.typed_from_text)

