"""STACK -> stack file -> ClusterSpec, with the YAML line of every problem.

A STACK is a stack name (resolved to `stacks/Pulumi.<stack>.yaml`) or a path to such a file. Unreadable
input is an AzclusterError with exit code 2; a readable file whose cluster is malformed gives schema
findings (AZC000) that carry the YAML path and line, so people and CI see one shape for every problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from azcluster.components import spec as spec_module
from azcluster.components.catalog import closest
from azcluster.components.findings import SCHEMA_ERROR_ID, Finding, sort_findings
from azcluster.components.safefile import UnsafeFile, read_small_text
from azcluster.components.spec import CLUSTER_CONFIG_KEY, LOCATION_CONFIG_KEY, ClusterSpec

from .errors import EXIT_USAGE, AzclusterError

STACK_FILE_MAX_BYTES = 1024 * 1024
"""The 1,024-node example is under 2 KB; a stack file a thousand times larger is a mistake or an attack."""
MAX_VALUES = 100_000
MAX_DEPTH = 64
STACK_FILE = re.compile(r"^Pulumi\.(?P<name>[^.]+)\.ya?ml$")
_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


@dataclass
class LoadedStack:
    """A stack file as read: its config, the spec when it parses, and schema findings when not."""

    name: str
    path: Path
    config: dict[str, Any]
    document: Any = field(repr=False)
    spec: ClusterSpec | None = None
    schema_findings: list[Finding] = field(default_factory=list)
    team_file: Path | None = None
    team_document: Any = field(default=None, repr=False)

    def line_of(self, yaml_path: str) -> int | None:
        """1-based line of a finding's YAML path (or of its nearest existing ancestor)."""
        return _line_of(self.document, yaml_path)

    def locate(self, findings: Iterable[Finding]) -> list[Finding]:
        """Findings with their line: in the team file for what it holds, else in the stack file."""
        located = []
        for finding in findings:
            inside = _team_file_path(finding.path) if self.team_file is not None else None
            if inside is not None and not finding.file:
                line = _path_line(self.team_document, inside)
                finding = replace(finding, file=str(self.team_file), line=line or finding.line)
            elif not finding.line:
                finding = replace(finding, line=self.line_of(finding.path))
            located.append(finding)
        return located


TEAM_PATH = f"{CLUSTER_CONFIG_KEY}.team"
TEAM_FILE_KEYS = ("users", "groups", "accounts")
"""What a team file (`team.file`) holds at its top level: the same keys as the stack file's `team:`."""


def _team_file_path(yaml_path: str) -> str | None:
    """`users[0].uid` for `azcluster:cluster.team.users[0].uid` (what a team file holds), else None."""
    rest = yaml_path.removeprefix(TEAM_PATH + ".")
    if rest == yaml_path or not rest.startswith(TEAM_FILE_KEYS):
        return None
    return rest


def _path_line(document: Any, relative: str) -> int | None:
    """The 1-based line of `users[0].uid` in a YAML document (or of its nearest existing ancestor)."""
    return _walk_lines(document, "." + relative, None)


def _walk_lines(node: Any, steps: str, line: int | None) -> int | None:
    """Follow `.key[0].key` steps down a ruamel document; the line of the deepest one found, else `line`."""
    for key, index in _PATH_STEP.findall(steps):
        step: Any = int(index) if index else key
        try:
            found = _key_line(node, step)
            node = node[step]
        except (KeyError, IndexError, TypeError):
            break
        line = found or line
    return line


def stacks_dir() -> Path:
    """Where stack names are looked up: $AZCLUSTER_STACKS_DIR, ./stacks, or the project's stacks/."""
    if env := os.environ.get("AZCLUSTER_STACKS_DIR"):
        return Path(env)
    local = Path.cwd() / "stacks"
    if local.is_dir():
        return local
    return Path(__file__).resolve().parent.parent / "stacks"


def available_stacks(directory: Path | None = None) -> list[str]:
    directory = directory or stacks_dir()
    names = (STACK_FILE.match(p.name) for p in sorted(directory.glob("Pulumi.*.y*ml")))
    return [m.group("name") for m in names if m]


def stack_name(stack: str) -> str:
    """The stack name a STACK argument stands for, without reading anything."""
    try:
        return resolve(stack)[0]
    except (AzclusterError, OSError, ValueError):  # e.g. `~nosuchuser/...` cannot be expanded
        return stack


def resolve(stack: str) -> tuple[str, Path]:
    """(stack name, file path) for a stack name or a path to a stack file."""
    try:
        candidate = Path(stack).expanduser()
    except RuntimeError as err:  # `~nosuchuser/...`
        raise AzclusterError(f"cannot find stack file {stack}: {err}", "", EXIT_USAGE) from None
    if stack.endswith((".yaml", ".yml")) or os.sep in stack:
        match = STACK_FILE.match(candidate.name)
        return (match.group("name") if match else candidate.stem), candidate
    return stack, stacks_dir() / f"Pulumi.{stack}.yaml"


def read_document(path: Path, kind: str = "stack file") -> Any:
    """Parse YAML keeping line numbers; missing or broken files are exit-2 errors naming the line.

    `kind` names the file in messages: the stack file, or a team file it names (same loader, same limits).
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        text = read_small_text(path, STACK_FILE_MAX_BYTES, kind)
    except FileNotFoundError:
        hint = _missing_hint(path) if kind == "stack file" else f"create it, or fix the path to the {kind}"
        raise AzclusterError(f"{kind} {path} does not exist", hint, EXIT_USAGE) from None
    except UnsafeFile as err:
        raise AzclusterError(str(err), f"give the path of a {kind} (YAML)", EXIT_USAGE) from None
    except OSError as err:
        why = err.strerror or err
        raise AzclusterError(f"cannot read {kind} {path}: {why}", "", EXIT_USAGE) from None
    except UnicodeDecodeError as err:
        raise AzclusterError(f"{kind} {path} is not UTF-8 text: {err.reason}", "", EXIT_USAGE) from None
    try:
        return YAML(typ="rt").load(text)
    except RecursionError:
        raise _too_deep(path) from None
    except TypeError:
        # ruamel hashes a mapping key by its items, so a key that is a mapping holding a mapping (`? lustre:`
        # with settings under it) fails with "unhashable type" before any key is seen: find it and say so.
        line = _complex_key_line(text)
        if line is None:
            raise
        raise _complex_key(path, line) from None
    except MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else "?"
        raise AzclusterError(
            f"{path}:{line}: not valid YAML: {err.problem}",
            "check indentation and quoting around that line",
            EXIT_USAGE,
        ) from None
    except YAMLError as err:
        raise AzclusterError(f"{path}: not valid YAML: {err}", "", EXIT_USAGE) from None


def load_stack(stack: str) -> LoadedStack:
    name, path = resolve(stack)
    return parse_document(name, path, read_document(path))


def parse_document(name: str, path: Path, document: Any) -> LoadedStack:
    """A parsed stack file -> LoadedStack; `init` checks the file it is about to write through here."""
    for node in (document, document.get("config") if isinstance(document, dict) else None):
        if (tag := _foreign_tag(node)) is not None:
            raise _tagged(path, tag, getattr(getattr(node, "lc", None), "line", None))
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise AzclusterError(
            f"{path}: no `config:` mapping at the top level",
            f"a stack file looks like `config: {{{LOCATION_CONFIG_KEY}: eastus, {CLUSTER_CONFIG_KEY}: ...}}`;"
            " `azcluster init NAME` writes one",
            EXIT_USAGE,
        )
    config = _plain(document["config"], path)
    loaded = LoadedStack(name=name, path=path, config=config, document=document)
    if not isinstance(config.get(CLUSTER_CONFIG_KEY), dict):
        loaded.schema_findings = [
            Finding(
                SCHEMA_ERROR_ID,
                "error",
                CLUSTER_CONFIG_KEY,
                f"the stack has no `{CLUSTER_CONFIG_KEY}` mapping under `config:`",
                "describe the cluster there; `azcluster init NAME` writes a commented example",
                line=_line_of(document, "config"),
            )
        ]
        return loaded
    team_dir = _merge_team_file(loaded)
    try:
        loaded.spec = spec_module.parse_cluster(config, base_dir=path.parent, team_dir=team_dir)
    except ValidationError as err:
        loaded.schema_findings = loaded.locate(_schema_findings(err, config))
    return loaded


def _merge_team_file(loaded: LoadedStack) -> Path | None:
    """Read the team file the stack names (`team.file`) into the config's `team:`; its directory, where the
    keys it names are read from. Read like the stack file: same loader and limits, errors name its line."""
    cluster = loaded.config[CLUSTER_CONFIG_KEY]
    team = cluster.get("team")
    if not isinstance(team, dict) or not isinstance(team.get("file"), str):
        return None
    line = loaded.line_of(f"{TEAM_PATH}.file")
    where = f"{loaded.path}:{line}" if line else str(loaded.path)
    inline = [key for key in TEAM_FILE_KEYS if key in team]
    if inline:
        line = loaded.line_of(f"{TEAM_PATH}.{inline[0]}")
        where = f"{loaded.path}:{line}" if line else str(loaded.path)
        raise AzclusterError(
            f"{where}: `team.file` names a team file and `team.{inline[0]}` is given here too",
            "keep the team in one place: move the users, groups and accounts into the team file",
            EXIT_USAGE,
        )
    try:
        team_path = Path(team["file"]).expanduser()
    except RuntimeError as err:  # `~nosuchuser/...`
        message = f"{where}: cannot find team file {team['file']}: {err}"
        raise AzclusterError(message, "", EXIT_USAGE) from None
    if not team_path.is_absolute():
        team_path = loaded.path.parent / team_path
    document = read_document(team_path, "team file")
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise AzclusterError(
            f"{team_path}: a team file is a mapping with `users:`, `groups:` and `accounts:`",
            f"it is named by {where}; see README's team section for an example",
            EXIT_USAGE,
        )
    content = _plain(document, team_path)
    for key in content:
        if key not in TEAM_FILE_KEYS:
            key_line = _key_line(document, key)
            raise AzclusterError(
                f"{team_path}:{key_line}: unknown key `{key}` in a team file",
                f"a team file holds {', '.join(TEAM_FILE_KEYS)} (as `team:` in a stack file does)",
                EXIT_USAGE,
            )
    cluster["team"] = {**team, **content}
    loaded.team_file, loaded.team_document = team_path, document
    return team_path.parent


def validate(loaded: LoadedStack, suppress: Iterable[str] = ()) -> list[Finding]:
    """Schema findings, or the rules' findings with YAML lines attached."""
    if loaded.spec is None:
        return sort_findings(loaded.schema_findings)
    from azcluster.components import rules

    return loaded.locate(rules.check(loaded.spec, suppress=suppress))


def _schema_findings(err: ValidationError, config: dict[str, Any]) -> list[Finding]:
    findings = []
    for problem in err.errors(include_url=False):
        message, hint = _explain(problem, problem["loc"])
        path = spec_module.yaml_path(problem["loc"], config)
        findings.append(Finding(SCHEMA_ERROR_ID, "error", path, message, hint))
    return findings


def _explain(problem: dict[str, Any], loc: tuple[Any, ...]) -> tuple[str, str]:
    kind, key = problem["type"], loc[-1] if loc else ""
    if kind == "extra_forbidden":
        known = list(_model_at(loc[:-1]).model_fields)
        guesses = closest(str(key), known)
        hint = f"did you mean `{guesses[0]}`?" if guesses else f"known keys here: {', '.join(known)}"
        return f"unknown key `{key}`", hint
    if kind == "missing":
        if loc == ("location",):
            return "no region given", f"set `{LOCATION_CONFIG_KEY}: eastus` (or another region) under config:"
        return f"`{key}` is required here", "add it; `azcluster schema` lists every key"
    given = problem.get("input")
    shown = "" if isinstance(given, dict | list) else f" (got {given!r})"
    message = problem["msg"].removeprefix("Value error, ")
    return f"`{key}`: {message}{shown}", "`azcluster schema` describes every key and its allowed values"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel]:
    """The pydantic model that holds the key at `loc`, walking list items and nested models."""
    model: type[BaseModel] = ClusterSpec
    for step in loc:
        if isinstance(step, int):
            continue
        annotation = model.model_fields[str(step)].annotation
        model = _inner_model(annotation) or model
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if found := _inner_model(arg):
            return found
    return None


def _line_of(document: Any, yaml_path: str) -> int | None:
    """Walk `config` then the path's steps through ruamel's line info; 1-based, nearest known."""
    node = document.get("config") if isinstance(document, dict) else None
    line = _key_line(document, "config")
    if node is None:
        return line
    head, _, rest = yaml_path.partition(".")
    head, bracket, tail = head.partition("[")
    rest = (bracket + tail + ("." + rest if rest else "")) if bracket else ("." + rest if rest else "")
    if head not in node:
        return line
    return _walk_lines(node[head], rest, _key_line(node, head) or line)


def _key_line(node: Any, step: Any) -> int | None:
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        position = lc.item(step) if isinstance(step, int) else lc.key(step)
    except (KeyError, IndexError, TypeError):
        return None
    return position[0] + 1 if position else None


@dataclass
class _Expansion:
    """How much of the config `_plain` has copied: values left under MAX_VALUES, and how many of them were
    copies made by YAML aliases (a list or mapping met a second time), so the error names the limit hit."""

    left: int = MAX_VALUES
    through_aliases: int = 0
    seen: set[int] = field(default_factory=set)


def _plain(
    node: Any,
    path: Path,
    budget: _Expansion | None = None,
    depth: int = 0,
    at: tuple[Any, Any, Any] | None = None,
    aliased: bool = False,
) -> Any:
    """ruamel's commented containers -> plain dicts, lists and scalars (what Pulumi config gives).

    YAML aliases are shared in ruamel's document but copied here, so a file under 1 KB of nested aliases
    (a "billion laughs") would expand to billions of values: the copy stops at MAX_VALUES values and
    MAX_DEPTH levels, far beyond any real cluster, with an exit-2 error that says which limit was hit and
    where. `at` is (container, key or index, the container's own `at`), for the line of an error.
    """
    budget = budget if budget is not None else _Expansion()
    budget.left -= 1
    if budget.left < 0:
        raise _too_many_values(path, budget, at)
    if depth > MAX_DEPTH:
        raise _too_deep(path)
    if isinstance(node, dict | list):
        if (tag := _foreign_tag(node)) is not None:
            raise _tagged(path, tag, getattr(getattr(node, "lc", None), "line", None))
        aliased = aliased or id(node) in budget.seen
        budget.seen.add(id(node))
    if aliased:
        budget.through_aliases += 1
    if isinstance(node, dict):
        return {
            _key(key, path): _plain(value, path, budget, depth + 1, (node, key, at), aliased)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [
            _plain(value, path, budget, depth + 1, (node, index, at), aliased)
            for index, value in enumerate(node)
        ]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    from ruamel.yaml.comments import TaggedScalar

    if isinstance(node, TaggedScalar):
        if (tag := _foreign_tag(node)) is not None:
            raise _tagged(path, tag, _line_at(at), zero_based=False)
        return str(node.value)  # `!!str 12`: the one scalar tag ruamel keeps, and it only says "text"
    if isinstance(node, bytes | AbstractSet):  # `!!binary`, `!!set`: tags ruamel builds a value for itself
        raise _tagged(
            path, "!!binary" if isinstance(node, bytes) else "!!set", _line_at(at), zero_based=False
        )
    return node  # an unquoted date: the schema says what the value should have been


PLAIN_TAGS = ("tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
"""Explicit tags that change nothing (`!!str 12`, `!!map {...}`); the other core tags (`!!int`, `!!bool`,
`!!null`, `!!float`) come back from ruamel as plain values, with no tag left to see."""


def _foreign_tag(node: Any) -> str | None:
    """The explicit YAML tag on `node` (`!!python/object/apply:...`, `!custom`), or None when it has none
    or one of the PLAIN_TAGS. ruamel's round-trip loader never runs a tag: it keeps it on a TaggedScalar or
    on the container's `.tag`, where it would reach the spec as a value nobody expects."""
    tag = getattr(getattr(node, "tag", None), "value", None)
    if not isinstance(tag, str) or not tag or tag in PLAIN_TAGS:
        return None
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _tagged(path: Path, tag: str, line: int | None, zero_based: bool = True) -> AzclusterError:
    if line is not None and zero_based:
        line += 1
    where = f"{path}:{line}" if line is not None else str(path)
    return AzclusterError(
        f"{where}: YAML tag `{tag}` is not allowed: stack and team files hold plain values (text, numbers, "
        "true/false, lists and mappings)",
        "remove the tag; azcluster never builds objects from YAML tags",
        EXIT_USAGE,
    )


def _line_at(at: tuple[Any, Any, Any] | None) -> int | None:
    """The 1-based line of the innermost item of `at` whose position ruamel kept."""
    while at is not None:
        container, step, at = at
        try:
            position = container.lc.key(step) if isinstance(container, dict) else container.lc.item(step)
        except (AttributeError, KeyError, IndexError, TypeError):
            continue
        if position:
            return position[0] + 1
    return None


def _too_many_values(path: Path, budget: _Expansion, at: tuple[Any, Any, Any] | None) -> AzclusterError:
    line = _line_at(at)
    where = f"{path}:{line}" if line is not None else str(path)
    if budget.through_aliases * 2 > MAX_VALUES:  # most of what was copied came from aliases
        return AzclusterError(
            f"{where}: the config expands to more than {MAX_VALUES:,} values through YAML aliases "
            "(&anchor / *alias): each alias copies what it names",
            "write the values out instead of nesting aliases of aliases",
            EXIT_USAGE,
        )
    return AzclusterError(
        f"{where}: the config holds more than {MAX_VALUES:,} values, the most a stack file may have "
        "(a cluster needs a few hundred)",
        "a stack file describes one cluster's shape: look for a list generated or pasted by mistake "
        "around that line",
        EXIT_USAGE,
    )


def _key(key: Any, path: Path) -> str:
    """A mapping key as Pulumi config has them: text. A YAML complex key (`? [a, b]`) is refused."""
    if isinstance(key, Mapping | list | tuple | set):  # ruamel's CommentedKeyMap is a Mapping, not a dict
        line = getattr(getattr(key, "lc", None), "line", None)
        raise _complex_key(path, line + 1 if isinstance(line, int) else None)
    if (tag := _foreign_tag(key)) is not None:
        raise _tagged(path, tag, None)
    return str(key)


def _complex_key(path: Path, line: int | None) -> AzclusterError:
    where = f":{line}" if line is not None else ""
    return AzclusterError(
        f"{path}{where}: a mapping key is a list or mapping (YAML `? ...` complex key)",
        "keys in a stack file are plain names, e.g. `lustre:` with its settings indented under it; "
        "drop the `?`",
        EXIT_USAGE,
    )


def _complex_key_line(text: str) -> int | None:
    """The line of the first mapping key that is a list or mapping, read from the YAML node graph (which
    ruamel composes without hashing keys), or None when there is none."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    try:
        pending = [YAML(typ="rt").compose(text)]
    except (YAMLError, RecursionError):
        return None
    seen: set[int] = set()
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if not isinstance(key, ScalarNode):
                    return key.start_mark.line + 1
                pending.append(value)
        elif isinstance(node, SequenceNode):
            pending.extend(node.value)
    return None


def _too_deep(path: Path) -> AzclusterError:
    return AzclusterError(
        f"{path}: nested more than {MAX_DEPTH} levels deep",
        "a cluster needs a few levels; check for runaway brackets or aliases",
        EXIT_USAGE,
    )


def _missing_hint(path: Path) -> str:
    names = available_stacks(path.parent) if path.parent.is_dir() else []
    known = f"stacks here: {', '.join(names)}; " if names else ""
    return f"{known}create one with `azcluster init NAME`"
