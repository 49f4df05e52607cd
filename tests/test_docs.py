"""The documentation stays true to the code it describes.

The settings table in docs/configuration.md is generated from ``settings_reference()``;
after changing a setting, regenerate it with ``python tests/test_docs.py``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from noodle_upgrade.cli.main import _parser
from noodle_upgrade.config import settings_reference
from noodle_upgrade.models import STRATEGY_NAMES
from noodle_upgrade.runtime.strategies import OTHER_PARAMETERS, PARAMETERS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
STRATEGIES = DOCS / "strategies.md"
CONCEPTS = DOCS / "concepts.md"
SERVER = ROOT / "server" / "noodle_upgrade"
OWN_PAGES = [
    README,
    *(
        DOCS / name
        for name in (
            "getting-started.md",
            "concepts.md",
            "manifest.md",
            "configuration.md",
            "strategies.md",
            "architecture.md",
            "cli.md",
            "ale.md",
        )
    ),
]
# Pages other people write in parallel: linked to, but they may not exist yet.
OTHERS_PAGES = {DOCS / "benchmarks.md"}
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def settings_table() -> str:
    """The settings table as docs/configuration.md holds it, from ``settings_reference()``."""
    lines = [
        "| setting | environment variable | config file key | allowed values | default | meaning |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in settings_reference():
        env = f"`{row['env']}`" if row["env"] else "(config file only)"
        cells = [
            f"`{row['name']}`",
            env,
            f"`{row['file_key']}`",
            row["type"],
            f"`{row['default']}`",
            row["description"],
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def _generated_block(text: str) -> str:
    assert BEGIN in text and END in text, f"{CONFIGURATION} lost its {BEGIN} … {END} markers"
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def write_settings_table() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    CONFIGURATION.write_text(f"{before}{BEGIN}\n{settings_table()}\n{END}{after}", "utf-8")


# ---------------------------------------------------------------------------- configuration


def test_every_setting_is_documented_with_its_environment_variable() -> None:
    block = _generated_block(CONFIGURATION.read_text(encoding="utf-8"))
    rows = {line.split("|")[1].strip(): line for line in block.splitlines()}
    for setting in settings_reference():
        row = rows.get(f"`{setting['name']}`")
        assert row is not None, f"{setting['name']} has no row in {CONFIGURATION.name}"
        if setting["env"]:
            assert f"`{setting['env']}`" in row, f"{setting['name']}: {setting['env']} missing"
        assert f"`{setting['file_key']}`" in row


def test_settings_table_is_generated_from_the_code() -> None:
    block = _generated_block(CONFIGURATION.read_text(encoding="utf-8"))
    assert block == settings_table(), (
        "docs/configuration.md is out of date: run `python tests/test_docs.py` to regenerate it"
    )


# ---------------------------------------------------------------------------- README


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_readme_quick_start_begins_with_make_demo_and_make_test() -> None:
    text = README.read_text(encoding="utf-8")
    assert text.startswith("# NoodleCore Upgrade\n")
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    first_block = _code_blocks(section)[0]
    commands = [line.strip() for line in first_block.splitlines() if line.strip()]
    assert commands[:2] == ["make demo", "make test"]


def test_makefile_has_the_quick_start_targets() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, flags=re.MULTILINE)
    assert re.search(r"^test:", makefile, flags=re.MULTILINE)


# ---------------------------------------------------------------------------- links


@pytest.mark.parametrize("page", OWN_PAGES, ids=lambda page: page.name)
def test_relative_links_resolve(page: Path) -> None:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)  # code, in blocks or inline, is no link
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve()
        if resolved in OTHERS_PAGES and not resolved.exists():
            continue
        assert resolved.exists(), f"{page.name}: link to missing {target}"
        if anchor and resolved.suffix == ".md" and resolved in OWN_PAGES:
            assert anchor in _anchors(resolved), f"{page.name}: no #{anchor} in {path}"


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


# ---------------------------------------------------------------------------- CLI and codes


def test_every_cli_command_has_a_section() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    subparsers = next(
        action for action in _parser()._actions if action.dest == "command" and action.choices
    )
    for name in subparsers.choices:
        assert re.search(rf"^## `noodle {name}\b", text, re.MULTILINE), f"noodle {name}"


def test_every_error_code_is_explained() -> None:
    codes = set()
    for path in SERVER.rglob("*.py"):
        codes |= set(re.findall(r"""code\s*=\s*["']([a-z][a-z0-9-]+)["']""", path.read_text()))
    assert "no-upgrade-path" in codes  # the scan itself works
    text = CONCEPTS.read_text(encoding="utf-8")
    table = text.split("## Refusal and failure codes", 1)[1]
    missing = sorted(code for code in codes if f"| `{code}` |" not in table)
    assert not missing, f"docs/concepts.md does not explain: {', '.join(missing)}"


# ---------------------------------------------------------------------------- strategies and events


def _section(text: str, heading: str) -> str:
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def _shown(number: float) -> str:
    """A bound as the parameters table writes it: 0, 2, 0.05, or 10⁶ for a power of ten."""
    exponent = len(str(int(number))) - 1
    if number >= 1e6 and number == 10**exponent:
        return "10" + str(exponent).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"{number:g}"


def test_every_strategy_has_a_section() -> None:
    text = STRATEGIES.read_text(encoding="utf-8")
    for name in STRATEGY_NAMES:
        assert f"\n## {name}\n" in text, f"docs/strategies.md has no section ## {name}"


def test_every_strategy_parameter_is_documented_with_its_default_and_range() -> None:
    table = _section(STRATEGIES.read_text(encoding="utf-8"), "## Parameters")
    rows = {
        line.split("|")[1].strip(): line.split("|")
        for line in table.splitlines()
        if line[:3] == "| `"
    }
    for name, (kind, default, low, high) in PARAMETERS.items():
        cells = rows.get(f"`{name}`")
        assert cells is not None, f"docs/strategies.md: no row for parameter {name}"
        assert cells[2].strip() == f"`{default:g}`", f"{name}: default {default:g}"
        assert f"{_shown(low)} – {_shown(high)}" in cells[3], f"{name}: range {low:g}–{high:g}"
        assert (kind is int) == ("integer" in cells[3]), f"{name}: integer or not"
    for name in OTHER_PARAMETERS:
        assert f"`{name}`" in rows, f"docs/strategies.md: no row for parameter {name}"


def test_every_event_kind_is_documented() -> None:
    kinds = set()
    for path in SERVER.rglob("*.py"):
        kinds |= set(re.findall(r"""publish\(\s*["']([a-z_]+\.[a-z_]+)["']""", path.read_text()))
    assert "rollout.step" in kinds  # the scan itself works
    events = _section(CONCEPTS.read_text(encoding="utf-8"), "## Events")
    missing = sorted(kind for kind in kinds if f"`{kind}`" not in events)
    assert not missing, f"docs/concepts.md (Events) does not list: {', '.join(missing)}"


if __name__ == "__main__":
    write_settings_table()
    sys.stdout.write(f"regenerated the settings table in {CONFIGURATION}\n")
