"""YAML parsing that remembers where every key and value came from.

Validation errors are only useful when they point at a line, so the loader keeps a map from
the path of every node (`("models", "bot", "hyperparameters", "n_epochs")`) to the source
position of its key and of its value. Parsing uses a `yaml.SafeLoader` subclass: no Python
object tags, ever. Duplicate keys, tabs used for indentation, syntax errors, an empty file and
a non-mapping document all become diagnostics instead of exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Union

import yaml  # type: ignore[import-untyped, unused-ignore]  # typed when types-PyYAML is installed
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode  # type: ignore[import-untyped, unused-ignore]

from ftops.diagnostics import Diagnostic, SourceRange, error

PathKey = Union[str, int]  # noqa: UP007 (runtime alias, py3.10)
Path_ = tuple[PathKey, ...]


@dataclass(frozen=True)
class NodePosition:
    """Where a node's key (None for the root and list items) and its value start."""

    key: SourceRange | None
    value: SourceRange


_TIMESTAMP = "tag:yaml.org,2002:timestamp"


def _without_timestamps(base: Any) -> dict[Any, list[tuple[str, Any]]]:
    return {first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
            for first, resolvers in base.yaml_implicit_resolvers.items()}


class PurePositionLoader(yaml.SafeLoader):  # type: ignore[misc, unused-ignore]
    """SafeLoader used only to compose nodes and construct scalars (the pure-Python parser).

    Mappings and sequences are walked by `_Walker`, which records positions and detects
    duplicate keys (PyYAML silently keeps the last one). Timestamps are not resolved: no field
    is a date, and `api_version: 2024-10-21` must stay the string it looks like.
    """

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = _without_timestamps(  # type: ignore[misc, unused-ignore]
        yaml.SafeLoader)


if hasattr(yaml, "CSafeLoader"):
    class PositionLoader(yaml.CSafeLoader):  # type: ignore[misc, unused-ignore]
        """The same as PurePositionLoader on libyaml's parser (~5x faster, same marks)."""

        yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = _without_timestamps(  # type: ignore[misc, unused-ignore]
            yaml.SafeLoader)
else:  # pragma: no cover - PyYAML built without libyaml
    PositionLoader = PurePositionLoader  # type: ignore[misc, assignment, unused-ignore]


def _range(filename: str, node: Node) -> SourceRange:
    start, end = node.start_mark, node.end_mark
    return SourceRange(filename, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


@dataclass
class ParsedYaml:
    """The plain Python value of a document plus the position of every node in it."""

    data: Any
    positions: dict[Path_, NodePosition]
    diagnostics: list[Diagnostic]


def _tab_diagnostics(text: str, filename: str) -> list[Diagnostic]:
    """One diagnostic per line whose leading whitespace contains a tab (YAML forbids it)."""
    out: list[Diagnostic] = []
    for i, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" \t")
        indent = line[: len(line) - len(stripped)]
        if "\t" in indent and stripped:
            col = indent.index("\t") + 1
            out.append(error(
                "config.yaml_tab", "tab character used for indentation",
                "YAML indentation must use spaces; a tab is not allowed at the start of a line.",
                range=SourceRange(filename, i, col), hint="replace the tab with spaces (2 per level)"))
    return out


#: Far above any real ftops.yaml (200 models are ~3,000 values).
MAX_NODES = 100_000
#: ftops.yaml is at most ~8 levels deep (models.NAME.grader.graders.NAME.input...); a document
#: nested deeper than this is hostile, and walking it recursively would exhaust the stack.
MAX_DEPTH = 64
#: A number with more digits is no setting of ftops.yaml (Python refuses to parse > 4,300).
MAX_NUMBER_CHARS = 100

_PLAIN_TAGS: dict[type, str] = {
    MappingNode: "tag:yaml.org,2002:map",
    SequenceNode: "tag:yaml.org,2002:seq",
}


class _Refused(yaml.constructor.ConstructorError):  # type: ignore[misc, unused-ignore]
    """A value the walker will not build (too deep, too long); carries its own hint."""

    def __init__(self, problem: str, node: Node, hint: str) -> None:
        super().__init__(None, None, problem, node.start_mark)
        self.hint = hint


class _Walker:
    def __init__(self, loader: Any, filename: str) -> None:
        self.loader = loader
        self.filename = filename
        self.positions: dict[Path_, NodePosition] = {}
        self.diagnostics: list[Diagnostic] = []
        self._active: set[int] = set()
        self.count = 0

    def walk(self, node: Node, path: Path_) -> Any:
        if len(path) > MAX_DEPTH:
            raise _Refused(f"the document is nested more than {MAX_DEPTH} levels deep", node,
                           "ftops.yaml is a few levels deep; flatten this value")
        self.count += 1
        if self.count > MAX_NODES:
            # Aliases are expanded while walking; a "billion laughs" document must not hang us.
            raise yaml.constructor.ConstructorError(
                None, None, f"document expands to more than {MAX_NODES} values (alias bomb?)",
                node.start_mark)
        expected = _PLAIN_TAGS.get(type(node))
        if expected is not None and node.tag != expected:
            # We build mappings and sequences ourselves, so a tag here would otherwise be ignored.
            raise yaml.constructor.ConstructorError(
                None, None, f"tag {node.tag} is not allowed", node.start_mark)
        if isinstance(node, (MappingNode, SequenceNode)):
            if id(node) in self._active:  # recursive alias (`&a [*a]`, `&m {k: *m}`): refuse rather than loop
                self.diagnostics.append(error(
                    "config.yaml_syntax", "recursive YAML alias",
                    "an alias refers to a collection that contains it, which would be infinitely deep.",
                    range=_range(self.filename, node), hint="replace the alias with the values it should repeat"))
                return None
            self._active.add(id(node))
            try:
                return self._mapping(node, path) if isinstance(node, MappingNode) else self._sequence(node, path)
            finally:
                self._active.discard(id(node))
        assert isinstance(node, ScalarNode)
        return self._scalar(node)

    def _sequence(self, node: SequenceNode, path: Path_) -> list[Any]:
        out: list[Any] = []
        for i, item in enumerate(node.value):
            self.positions[path + (i,)] = NodePosition(None, _range(self.filename, item))
            out.append(self.walk(item, path + (i,)))
        return out

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and len(node.value) > MAX_NUMBER_CHARS:
            raise _Refused(f"a number of {len(node.value):,} characters is not a valid value", node,
                           "write a number within the setting's range (seed: 0 to 2147483647)")
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:  # e.g. an int too long for Python to parse
            raise _Refused(f"cannot read this value: {exc}", node, "write a plain, shorter value") from None

    def _mapping(self, node: MappingNode, path: Path_) -> dict[Any, Any]:
        self.loader.flatten_mapping(node)  # resolves `<<` merge keys the way SafeLoader does
        out: dict[Any, Any] = {}
        first_seen: dict[Any, SourceRange] = {}
        for key_node, value_node in node.value:
            key_range = _range(self.filename, key_node)
            if not isinstance(key_node, ScalarNode):
                self.diagnostics.append(error(
                    "config.invalid_key", "a mapping key must be a plain scalar", range=key_range))
                continue
            key = self._scalar(key_node)
            if key is None or isinstance(key, (bool, float)):
                # `null:`/`yes:`/`1.5:` keys are almost always a typo; keep their source text
                key = key_node.value
            if isinstance(key, int):
                key = key_node.value
            if key in first_seen:
                prev = first_seen[key]
                self.diagnostics.append(error(
                    "config.duplicate_key", f"duplicate key `{key}`",
                    f"`{key}` is already defined at line {prev.line}; YAML would silently keep only "
                    "the last one.",
                    range=key_range, hint=f"remove one of the two definitions (lines {prev.line} and "
                                          f"{key_range.line})"))
                continue
            first_seen[key] = key_range
            child = path + (key,)
            self.positions[child] = NodePosition(key_range, _range(self.filename, value_node))
            out[key] = self.walk(value_node, child)
        return out


def _reader_error(exc: Any, text: str, filename: str) -> Diagnostic:
    """A control character in the file (YAML refuses them before any syntax)."""
    before = text[: max(int(exc.position), 0)]
    line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
    code = ord(exc.character) if isinstance(exc.character, str) else int(exc.character)
    return error("config.yaml_syntax", f"YAML error: control character U+{code:04X} is not allowed",
                 range=SourceRange(filename, line, col), hint="remove the control character")


def parse_yaml(text: str, filename: str, *, pure: bool = False) -> ParsedYaml:
    """Parse one YAML document into plain data with positions; never raises for bad input.

    `pure` forces the pure-Python parser (tests check both give the same diagnostics).
    """
    root_range = SourceRange(filename, 1, 1)
    try:
        loader = (PurePositionLoader if pure else PositionLoader)(text)
    except yaml.reader.ReaderError as exc:  # pure-Python reader: checked before parsing
        return ParsedYaml(None, {}, [_reader_error(exc, text, filename)])
    try:
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:  # libyaml: reported while parsing
        return ParsedYaml(None, {}, [_reader_error(exc, text, filename)])
    except yaml.MarkedYAMLError as exc:
        tabs = _tab_diagnostics(text, filename)
        if tabs:
            return ParsedYaml(None, {}, tabs)
        mark = exc.problem_mark or exc.context_mark
        rng = SourceRange(filename, mark.line + 1, mark.column + 1) if mark else root_range
        problem = exc.problem or "invalid YAML"
        detail = f"{exc.context} ({exc.context_mark.line + 1}:{exc.context_mark.column + 1})" \
            if exc.context and exc.context_mark else ""
        lines = text.splitlines()
        hint = "check indentation and quoting around this position"
        if "another document" in problem:
            hint = "ftops.yaml holds exactly one YAML document: remove the extra `---`"
        elif mark and mark.line < len(lines) and "${" in lines[mark.line]:
            hint = "quote values that use ${...} inside {...} or [...], e.g. \"${vars.NAME}\""
        return ParsedYaml(None, {}, [error(
            "config.yaml_syntax", f"YAML syntax error: {problem}", detail, range=rng, hint=hint)])
    except yaml.YAMLError as exc:
        return ParsedYaml(None, {}, [error("config.yaml_syntax", f"YAML error: {exc}", range=root_range)])
    finally:
        loader.dispose()

    if node is None:
        return ParsedYaml(None, {}, [error(
            "config.empty", "the configuration file is empty",
            "ftops.yaml must be a mapping with at least `version: 1` and `models:`.",
            range=root_range, hint="run `ftops init` for a working starter file")])
    walker = _Walker(loader, filename)
    walker.positions[()] = NodePosition(None, _range(filename, node))
    try:
        data = walker.walk(node, ())
    except yaml.MarkedYAMLError as exc:  # e.g. a bad timestamp or an unknown tag
        mark = exc.problem_mark or exc.context_mark
        rng = SourceRange(filename, mark.line + 1, mark.column + 1) if mark else root_range
        return ParsedYaml(None, {}, [error(
            "config.yaml_syntax", f"YAML error: {exc.problem or exc}", range=rng,
            hint=getattr(exc, "hint", "ftops.yaml accepts only plain YAML values (no `!!python` or custom tags)"))])
    if not isinstance(node, MappingNode):
        return ParsedYaml(None, walker.positions, [error(
            "config.not_a_mapping", "the top level of the configuration must be a mapping",
            f"found a {type(data).__name__} instead; the file should start with `version: 1`.",
            range=_range(filename, node), hint="run `ftops init` for a working starter file")])
    return ParsedYaml(data, walker.positions, walker.diagnostics)
