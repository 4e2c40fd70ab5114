"""Text from users, files, Azure and rules is shown as written: rich never reads it as markup.

The consoles in azcluster.render show plain strings literally and `render.markup()` splices values in after
its own template is parsed; these tests hold both to that, then go through the real CLI where a user saw
`MarkupError` tracebacks or text vanish.
"""

from __future__ import annotations

import io
import re
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.table import Table
from rich.tree import Tree

from azcluster import render
from tests.clirunner import run_cli

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"
HOSTILE = ["[/]", "[/bold]", "[draft]", "a\\", "\\[b]x[/b]", "[red]x", ":smile:", "[link=http://x]y[/link]"]


def captured(*renderables, **options) -> str:
    out = render.SafeConsole(file=io.StringIO(), width=200, markup=False, emoji=False)
    for renderable in renderables:
        out.print(renderable, **options)
    return out.file.getvalue()


# Characters render shows as they are: not the control characters it escapes (tests below), no surrogates.
PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs")).filter(lambda c: render.clean(c) == c)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("[]/\\ab:@#= é"), max_size=20), st.text(PRINTABLE, max_size=10))
def test_markup_values_come_out_exactly_as_given(first, second):
    text = render.markup("[bold]x {}[/] [cyan]{}[/]y", first, second)
    assert text.plain == f"x {first} {second}y"


def test_markup_styles_the_values_by_the_tags_around_them():
    text = render.markup("[bold]{}[/] {:.2f} [cyan]{name}[/]", "[/bold]", 3.14159, name="[draft]")
    assert text.plain == "[/bold] 3.14 [draft]"
    styles = {str(span.style) for span in text.spans if span.start <= text.plain.index("[draft]") < span.end}
    assert styles == {"cyan"}


def test_plain_strings_print_literally_everywhere_rich_takes_a_string():
    table = Table(title="[/x]")
    table.add_column("[a]")
    table.add_row(*HOSTILE[:1])
    tree = Tree("[/bold] root")
    tree.add("[draft] leaf")
    shown = captured(" ".join(HOSTILE), table, tree, markup=True)  # even when a caller asks for markup
    for text in [*HOSTILE, "[/x]", "[a]", "[/bold] root", "[draft] leaf"]:
        assert text in shown


def test_status_and_progress_show_their_text_literally():
    out = render.SafeConsole(file=io.StringIO(), width=200, force_terminal=True, markup=False)
    with out.status("[/bold] previewing"):
        pass
    with render.task_progress(out) as bar:
        bar.add_task("[/] island", total=1, state="[draft] sending")
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.file.getvalue())
    assert "[/] island" in shown and "[draft] sending" in shown


def flat(text: str) -> str:
    """Output without table borders and line wrapping, to look for a sentence a table wrapped."""
    return re.sub(r"[\s│┃|]+", "", text)


def stack(tmp_path, *, image="", tags="", name="t"):
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            config:
              azure-native:location: eastus
              azcluster:cluster:
                name: demo
                zone: "1"
                {tags}
                pools:
                  - name: gpu
                    size: Standard_ND96asr_v4
                    nodes: 2
                    {image}
                ssh:
                  public_keys: ["{KEY}"]
            """
        ),
        encoding="utf-8",
    )
    return path


def test_validate_and_plan_show_azc017_whose_hint_has_brackets(tmp_path):
    """The hint `.../images/<i>[/versions/<v>]` raised MarkupError: `unexpected`, and no findings shown."""
    path = stack(tmp_path, image="image: microsoft-dsvm/ubuntu-hpc")
    for command in ("validate", "plan"):
        result = run_cli(command, str(path))
        assert result.exit_code == 1, result.stderr
        assert "AZC017" in result.stdout
        assert "unexpected" not in result.stderr and "MarkupError" not in result.stderr


def test_validate_names_a_path_with_brackets_in_full(tmp_path):
    folder = tmp_path / "[b]"
    folder.mkdir()
    result = run_cli("validate", str(stack(folder, name="[draft]")))
    assert result.exit_code == 0, result.stderr
    assert "[b]/Pulumi.[draft].yaml" in flat(result.stderr)


def test_findings_with_markup_like_user_text_are_shown_as_written(tmp_path):
    path = stack(tmp_path, tags='tags: {"[/bold]<": "x"}')
    result = run_cli("validate", str(path))
    assert result.exit_code == 1, result.stderr
    assert "AZC050" in result.stdout and "[/bold]<" in flat(result.stdout)


def test_help_names_the_stack_file_pattern():
    result = run_cli("validate", "--help")
    assert "Pulumi.<STACK>.yaml" in flat(result.stdout)


def test_only_render_decides_what_rich_parses():
    """No other module builds a Console, parses markup or escapes by hand: render.py is the one place."""
    from pathlib import Path

    package = Path(render.__file__).parent
    for source in package.rglob("*.py"):
        if source.name == "render.py":
            continue
        text = source.read_text(encoding="utf-8")
        for needle in ("from_markup", "rich.markup", "Console(", "TextColumn("):
            assert needle not in text, f"{source.relative_to(package)} uses {needle}"


def test_validate_counts_agree_with_their_nouns(tmp_path):
    path = stack(tmp_path, image="image: microsoft-dsvm/ubuntu-hpc")
    result = run_cli("validate", str(path))
    assert "(1 error, 0 warnings, 0 info)" in result.stderr, result.stderr


def test_plan_with_error_findings_shows_no_cost_or_quota(tmp_path):
    """Nothing was planned: a cost and a quota for a cluster that cannot be built would mislead."""
    result = run_cli("plan", str(stack(tmp_path, image="image: microsoft-dsvm/ubuntu-hpc")))
    assert result.exit_code == 1 and "AZC017" in result.stdout
    assert "cost per hour" not in result.stdout and "quota" not in result.stdout
    assert "nothing was planned" in result.stderr


# --- control characters ---------------------------------------------------------------------------------

ESCAPED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""What must never reach the terminal from someone else's text: C0 but newline and tab, DEL, C1, bidi."""
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
HOSTILE_CONTROL = ["\x1b[2J", "\x1b]0;title\x07", "\r", "\x9b31m", "\u202eevil", "\x00\x7f", "\x08"]


def shown_raw(*renderables) -> str:
    """What a console writes for `renderables`, as the bytes would reach a terminal (no styling codes: not
    a terminal, so anything control-like in it came from the text itself)."""
    return captured(*renderables)


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_clean_escapes_every_control_character_visibly_and_nothing_else(text):
    cleaned = render.clean(text)
    assert not ESCAPED.search(cleaned)
    assert (cleaned == text) == (not ESCAPED.search(text))
    for char in set(ESCAPED.findall(text)):
        code = ord(char)
        assert (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}") in cleaned
    assert cleaned.count("\n") == text.count("\n") and cleaned.count("\t") == text.count("\t")


@settings(max_examples=200, deadline=None)
@given(ANY_TEXT, ANY_TEXT, ANY_TEXT)
def test_no_control_character_reaches_the_terminal_by_any_path(first, second, third):
    """A plain str, a markup() value, a table cell and title, a tree label, a Text built elsewhere (the
    last guard), a finding and an error: none lets a control character through."""
    from rich.text import Text

    from azcluster.components.findings import Finding

    table = Table(title=first)
    table.add_column(second)
    table.add_row(third, render.markup("[bold]{}[/]", first))
    tree = Tree(second)
    tree.add(third)
    raw = Text(first + second, style="bold")
    raw.stylize("red", 0, len(first))
    finding = Finding("AZC050", "error", f"azcluster:cluster.tags.{first}", second, third)
    out = shown_raw(
        first, render.markup("x {} y", second), table, tree, raw, *render.finding_body(finding, 80)
    )
    assert not ESCAPED.search(out), repr(out)

    errors = render.SafeConsole(file=io.StringIO(), width=80)
    errors.print(render.markup("[bold red]error:[/] {}", first))
    with errors.status(second):
        pass
    assert not ESCAPED.search(errors.file.getvalue())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(ANY_TEXT, st.sampled_from(["", "bold", "red", "dim"])), min_size=1, max_size=5))
def test_a_text_built_elsewhere_keeps_its_styles_on_the_same_characters(parts):
    from rich.text import Text

    text = Text()
    for part, style in parts:
        text.append(part, style=style or None)
    cleaned = render.clean_text(text)
    assert cleaned.plain == render.clean(text.plain)
    # each styled piece covers, after cleaning, exactly its own text cleaned
    spans = [span for span in cleaned.spans]
    pieces = [(part, style) for part, style in parts if style and part]
    for span, (part, style) in zip(spans, pieces, strict=True):
        assert str(span.style) == style
        assert cleaned.plain[span.start : span.end] == render.clean(Text(part).plain)


def test_escapes_show_on_a_real_terminal_while_rich_keeps_its_own_colours():
    out = render.SafeConsole(file=io.StringIO(), width=120, force_terminal=True, color_system="standard")
    for hostile in HOSTILE_CONTROL:
        out.print(render.markup("[red]{}[/]", hostile), hostile)
    written = out.file.getvalue()
    assert "\\x1b[2J" in written and "\\x1b]0;title\\x07" in written and "\\u202eevil" in written
    own_colours = re.sub(r"\x1b\[[0-9;]*m", "", written)  # rich's SGR codes are the only escapes left
    assert not ESCAPED.search(own_colours.replace("\n", ""))


def test_an_escape_in_azures_error_message_is_shown_escaped(arm, tmp_path, monkeypatch):
    """Through the real CLI: Resource Manager's message is text from outside, shown on the terminal."""
    from tests.fakes.arm import fake_az_script

    bin_dir = tmp_path / "bin"
    fake_az_script(bin_dir, arm.fake.token)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    arm.fake.add_resource_group("demo-rg")
    arm.fake.inject(
        "GET",
        "/virtualMachineScaleSets",
        403,
        code="AuthorizationFailed",
        message="no\x1b[2J\x1b]0;x\x07 way",
    )
    path = stack(tmp_path)
    result = run_cli("status", str(path), "--auth", "cli")
    assert result.exit_code == 1, result.stderr
    assert "no\\x1b[2J\\x1b]0;x\\x07way" in flat(result.stderr)
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr

    arm.fake.inject(
        "GET", "/virtualMachineScaleSets", 403, code="AuthorizationFailed", message="no\x1b[2J way"
    )
    as_json = run_cli("status", str(path), "--auth", "cli", "--json")
    assert "\x1b" not in as_json.stdout and "\\u001b[2J" in as_json.stdout  # json.dumps escapes it already
