"""Everything azcluster shows people: rich tables on the terminal, JSON on stdout, progress on stderr.

With `--json`, stdout carries exactly one JSON document and nothing else, so CI can pipe it.

Text that came from a user, a file, Azure or a rule is never read as rich markup: a tag value `[/]` or an
image hint `.../images/<i>[/versions/<v>]` would raise `MarkupError`, and `[draft]` in a path would vanish.
This module is the one place that decides: the consoles below show every plain `str` literally (markup and
emoji codes off, whatever a caller passes), and the only styled text is a `Text` built by `markup()`, whose
template is ours and whose values are spliced in after the template is parsed, so no value is ever parsed.

Nor does such text reach the terminal as control characters: an ESC in a tag value, a YAML string or an
Azure message could move the cursor, recolour or retitle the terminal, or hide what follows; a carriage
return could overwrite the line. Every plain `str` (print arguments, table cells, titles), every value
spliced by `markup()`, every finding and error, and as a last guard every `Text` about to be drawn, shows
each C0/C1 control character (and the Unicode bidirectional overrides, which reorder what is seen) as a
visible escape: ESC as `\x1b`. Newline and tab keep their meaning. JSON needs none of this: json.dumps
already writes every control character as an escape.
"""

from __future__ import annotations

import json
import re
import string
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Span, Text

from azcluster.components.findings import Finding

_FIELD = "\ue000"
"""A private-use character stands for each value while the template is parsed; none of ours holds one."""

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""C0 (but tab and newline), DEL, C1, and the bidirectional embeddings, overrides and isolates."""


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str) -> str:
    """`text` with every control character shown as an escape (ESC -> `\\x1b`); newline and tab kept."""
    return _CONTROL.sub(lambda found: _escape(found.group()), text)


def clean_text(text: Text) -> Text:
    """A Text with its control characters escaped as `clean` does, its styles kept on the same characters."""
    plain = text.plain
    if not _CONTROL.search(plain):
        return text
    pieces: list[str] = []
    moved = [0] * (len(plain) + 1)  # old offset -> new offset
    at = 0
    for index, char in enumerate(plain):
        moved[index] = at
        pieces.append(_escape(char) if _CONTROL.fullmatch(char) else char)
        at += len(pieces[-1])
    moved[len(plain)] = at
    result = text.copy()
    result.plain = "".join(pieces)
    result.spans = [
        Span(moved[min(span.start, len(plain))], moved[min(span.end, len(plain))], span.style)
        for span in text.spans
    ]
    return result


def styled(text: str, style: str = "") -> Text:
    """Text from someone else (Azure, a node, the engine) in one style of ours, control characters escaped."""
    return Text(clean(text), style=style)


def markup(template: str, *args: Any, **kwargs: Any) -> Text:
    """Our rich markup with `{}` fields (str.format syntax) filled by values shown exactly as they are.

    The values never pass through rich's markup parser, so `[/bold]` in a value stays `[/bold]`, and a
    value takes the style of the tags around its field: `markup("[cyan]{}[/]", name)`.
    """
    formatter = string.Formatter()
    literal: list[str] = []
    values: list[str] = []
    auto = 0
    for text, field, spec, conversion in formatter.parse(template):
        literal.append(text)
        if field is None:
            continue
        if field == "":
            field, auto = str(auto), auto + 1
        value, _ = formatter.get_field(field, args, kwargs)
        values.append(clean(format(formatter.convert_field(value, conversion), spec or "")))
        literal.append(_FIELD)
    parsed = Text.from_markup("".join(literal), emoji=False)
    result = Text()
    start = 0
    for value in values:
        at = parsed.plain.index(_FIELD, start)
        result.append_text(parsed[start:at])
        styles = [span.style for span in parsed.spans if span.start <= at < span.end]
        result.append_text(Text(value, spans=[Span(0, len(value), style) for style in styles]))
        start = at + 1
    result.append_text(parsed[start:])
    return result


class SafeConsole(Console):
    """A rich Console that shows every plain string literally: only `markup()` Text carries styles.

    `render_str` is where rich turns every str it prints (print arguments, table cells and titles, tree
    labels) into Text; `status` would hand its str to a Spinner, which parses markup on its own.
    """

    def render_str(self, text: str, **options: Any) -> Text:  # type: ignore[override]
        options.update(markup=False, emoji=False)
        return super().render_str(clean(text), **options)

    def render(self, renderable: Any, options: Any = None) -> Any:
        """Every renderable is drawn through here (print, table cells, groups, live views): a Text built
        elsewhere from someone else's text still shows its control characters escaped."""
        if isinstance(renderable, Text):
            renderable = clean_text(renderable)
        return super().render(renderable, options)

    def status(self, status: Any, **options: Any) -> Any:  # type: ignore[override]
        return super().status(styled(status) if isinstance(status, str) else status, **options)


console = SafeConsole(stderr=True, highlight=False, markup=False, emoji=False)
"""Progress, logs and errors: stderr, so stdout stays clean for JSON and reports."""

stdout = SafeConsole(highlight=False, markup=False, emoji=False)
"""Human reports (tables, trees)."""

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def count(number: int, singular: str, plural: str = "") -> str:
    """`1 error`, `2 errors`: a number with its noun agreeing."""
    return f"{number} {singular if number == 1 else (plural or singular + 's')}"


documents_printed = 0
"""How many JSON documents this command printed: the CLI prints a failure document only when none was."""


def print_json(document: Any) -> None:
    """One JSON document on stdout, written as it is encoded: a list in it may be a `LazyList`, whose items
    are made one at a time (a plan's decoded cloud-configs), so a large document is never all in memory."""
    global documents_printed
    buffer: list[str] = []
    size = 0
    for chunk in json.JSONEncoder(indent=2, default=str).iterencode(document):
        buffer.append(chunk)
        size += len(chunk)
        if size > 1 << 16:
            sys.stdout.write("".join(buffer))
            buffer, size = [], 0
    sys.stdout.write("".join(buffer) + "\n")
    sys.stdout.flush()
    documents_printed += 1


class LazyList(list):
    """A list whose items are `make(item)` for each of `items`, made when read: for `print_json`.

    json's encoder with `indent` (pure Python) asks a list for its length and iterates it, which these
    methods answer without ever holding all made items."""

    def __init__(self, items: list[Any], make: Any) -> None:
        super().__init__()
        self._items = items
        self._make = make

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Any:
        return (self._make(item) for item in self._items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._make(item) for item in self._items[index]]
        return self._make(self._items[index])

    def __eq__(self, other: object) -> bool:
        return list(self) == other

    __hash__ = None  # type: ignore[assignment]


def error(message: str, hint: str = "") -> None:
    console.print(markup("[bold red]error:[/] {}", message), soft_wrap=True)
    if hint:
        console.print(markup("[dim]hint:[/] {}", hint), soft_wrap=True)


def side_step_warning(what: str, reason: str | None, hint: str | None, retry: str) -> None:
    """Two lines on stderr for a best-effort step of `up` that failed (hostfiles, users, dashboards): what
    was not done and why, then the hint and the command that retries it."""
    console.print(markup("[yellow]warning:[/] {}: {}", what, reason or ""), soft_wrap=True)
    console.print(
        markup("  [dim]hint:[/] {}retry with `{}`", f"{hint}; " if hint else "", retry), soft_wrap=True
    )


def finding_head(finding: Finding, source: str = "") -> Text:
    """Severity, id and `file:line`: printed soft-wrapped, so a long path stays one line to copy or click."""
    head = Text()
    head.append(finding.severity, style=SEVERITY_STYLE[finding.severity])
    head.append(clean(f" {finding.id}"), style="bold")
    source = finding.file or source
    if source:
        head.append(clean(f"  {_shown_path(source)}" + (f":{finding.line}" if finding.line else "")))
    return head


def finding_body(finding: Finding, width: int) -> list[Text]:
    """The YAML path, the message and the hint, indented by two and wrapped at words to `width`.

    A word longer than the line (a path, a URL) folds onto the next line rather than being cut. Text
    objects are not parsed for markup, so what a stack file says is shown as written.
    """
    parts = [styled(finding.path, "cyan"), styled(finding.message)]
    if finding.hint:
        parts.append(styled(f"hint: {finding.hint}", "dim"))
    lines = []
    for part in parts:
        for line in part.wrap(stdout, max(width - 2, 20), overflow="fold"):
            line.rstrip()
            lines.append(Text("  ") + line)
    return lines


def _shown_path(source: str) -> str:
    """A stack file's path as typed at the prompt: relative to the working directory when under it."""
    path = Path(source)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return source


def task_progress(console: Console) -> Any:
    """One line per parallel Azure operation: spinner, what, its latest `state=` field, elapsed time."""
    from rich.progress import Progress, ProgressColumn, SpinnerColumn, TimeElapsedColumn

    class FieldColumn(ProgressColumn):
        """A task's description or field as it is: a plain str literally, a `markup()` Text styled."""

        def __init__(self, field: str = "", style: str = "") -> None:
            super().__init__()
            self.field, self.style = field, style

        def render(self, task: Any) -> Text:
            value = task.fields.get(self.field, "") if self.field else task.description
            return value if isinstance(value, Text) else styled(str(value), self.style)

    return Progress(
        SpinnerColumn(),
        FieldColumn(),
        FieldColumn("state", style="dim"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def print_findings(findings: list[Finding], source: str = "") -> None:
    """Each finding as a block of lines: nothing a user must act on is cut, at any terminal width."""
    for finding in findings:
        stdout.print(finding_head(finding, source), soft_wrap=True)
        for line in finding_body(finding, stdout.width):
            stdout.print(line, soft_wrap=True)
