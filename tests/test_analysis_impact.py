"""Impact analysis: which call sites in a workspace use a component through the runtime,
and which of them a version breaks, at the exact name to underline.

``check_uses`` is tested against hand-made ``Api`` objects (what a version offers is
spelled out in each test), and end to end against ``extract_api`` on real version
folders, the demo's breaking parser release among them.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from noodle_upgrade.analysis.api import Api, ApiObject, Kind, Parameter, ParameterKind
from noodle_upgrade.analysis.extract import extract_api
from noodle_upgrade.analysis.impact import Finding, check_uses
from noodle_upgrade.analysis.uses import Span, Use, find_uses, scan_workspace
from noodle_upgrade.demo.components import publish, release
from noodle_upgrade.scaffold import write_component

DEMO_PACKAGE = Path(__file__).resolve().parent.parent / "server" / "noodle_upgrade" / "demo"


def uses_in(source: str, components: set[str] | None = None) -> list[Use]:
    """The uses in ``source`` (dedented), each span checked to cover its name."""
    text = textwrap.dedent(source)
    uses = find_uses(text, "app.py", components)
    lines = text.splitlines()
    for use in uses:
        for name, span in zip(use.chain, use.spans, strict=True):
            assert lines[span.line - 1][span.column : span.end_column] == name
    return uses


def sites(source: str) -> list[tuple[str, tuple[str, ...], int, int]]:
    """Each use as (component, chain, line, column of the name used)."""
    return [(u.component, u.chain, u.line, u.column) for u in uses_in(source)]


# --- hand-made APIs -----------------------------------------------------------------------

_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: ParameterKind.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD: ParameterKind.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.VAR_POSITIONAL: ParameterKind.VAR_POSITIONAL,
    inspect.Parameter.KEYWORD_ONLY: ParameterKind.KEYWORD_ONLY,
    inspect.Parameter.VAR_KEYWORD: ParameterKind.VAR_KEYWORD,
}


def function(
    path: str, signature: Callable[..., object], *decorators: str, kind: Kind = Kind.FUNCTION
) -> ApiObject:
    """A function whose parameters are those of ``signature`` (a lambda says them)."""
    parameters = tuple(
        Parameter(p.name, _KINDS[p.kind], None if p.default is p.empty else repr(p.default))
        for p in inspect.signature(signature).parameters.values()
    )
    return ApiObject(path, kind, parameters=parameters, decorators=decorators)


def klass(path: str, *bases: str, decorators: tuple[str, ...] = ()) -> ApiObject:
    return ApiObject(path, Kind.CLASS, bases=bases, decorators=decorators)


def attribute(path: str, value: str | None) -> ApiObject:
    return ApiObject(path, Kind.ATTRIBUTE, value=value)


def alias(path: str, target: str) -> ApiObject:
    return ApiObject(path, Kind.ALIAS, target=target)


def parser_api(
    *objects: ApiObject, handle_root: str | None = None, factory: str | None = None
) -> Api:
    """``parser 2.0.0`` holding ``objects`` (members follow from their paths; the module
    ``parser`` is implied)."""
    by_path = {"parser": ApiObject("parser", Kind.MODULE)} | {o.path: o for o in objects}
    members: dict[str, list[str]] = {}
    for path in by_path:
        owner, _, name = path.rpartition(".")
        members.setdefault(owner, []).append(name)
    full = {path: replace(o, members=tuple(members.get(path, ()))) for path, o in by_path.items()}
    return Api("parser", "2.0.0", "parser", full, handle_root=handle_root, factory=factory)


def findings(source: str, api: Api) -> list[str]:
    """Each finding as ``"line:column code: message"``, its span checked to cover one of
    the names of the use (an unknown keyword: the keyword's own name)."""
    uses = uses_in(source)
    lines = textwrap.dedent(source).splitlines()
    found = check_uses(uses, api)
    names = {name for use in uses for name in (*use.chain, *use.keywords)}
    for f in found:
        assert f.line == f.end_line
        assert lines[f.line - 1][f.column : f.end_column] in names
    return [f"{f.line}:{f.column} {f.code}: {f.message}" for f in found]


PARSE = function("parser.parse", lambda source, *, strict=False: None)


# --- find_uses: what counts as a handle ---------------------------------------------------


def test_a_call_through_a_module_level_handle_is_found_with_its_arguments_and_position() -> None:
    source = """\
        from noodle_upgrade import Runtime
        rt = Runtime.open(".")
        parser = rt.load("parser")
        tree = parser.parse("1 + 2", strict=True)
    """
    assert uses_in(source) == [
        Use(
            "app.py",
            "parser",
            ("parse",),
            (Span(4, 14, 4, 19),),
            is_call=True,
            positional=1,
            keywords=("strict",),
            keyword_spans=(Span(4, 29, 4, 35),),  # the keyword's name, for an editor
        )
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('p = self.rt.load("parser")\np.parse()\n', ("parser", ("parse",), 2, 2)),
        ('p = runtime.load("lexer")\np.tokenize\n', ("lexer", ("tokenize",), 2, 2)),
        ('p = rt.load(name="lexer")\np.tokenize\n', ("lexer", ("tokenize",), 2, 2)),
        ('p: Handle = rt.load("parser")\np.parse()\n', ("parser", ("parse",), 2, 2)),
        ('rt.load("parser").parse("1+2")\n', ("parser", ("parse",), 1, 18)),
        ('p = rt.load("parser")\nq = p\nq.parse()\n', ("parser", ("parse",), 3, 2)),
        ('if (p := rt.load("parser")):\n    p.parse()\n', ("parser", ("parse",), 2, 6)),
        ('p = cast(Parser, rt.load("parser"))\np.parse()\n', ("parser", ("parse",), 2, 2)),
        ('p = typing.cast(P, rt.load("parser"))\np.parse()\n', ("parser", ("parse",), 2, 2)),
        ('p = rt.load("parser")\np.Parser.parse\n', ("parser", ("Parser", "parse"), 2, 9)),
    ],
    ids=[
        "self-rt-receiver",
        "any-receiver",
        "by-keyword",
        "annotated",
        "direct",
        "alias",
        "walrus",
        "cast",
        "typing-cast",
        "chain",
    ],
)
def test_each_way_of_binding_a_handle_is_recognised(
    source: str, expected: tuple[str, tuple[str, ...], int, int]
) -> None:
    assert sites(source) == [expected]


def test_functions_see_their_own_bindings_then_the_enclosing_ones_then_the_module() -> None:
    source = """\
        parser = rt.load("parser")

        def compile(text):
            lexer = rt.load("lexer")
            def inner():
                return lexer.tokenize(text)
            return parser.parse(inner())
    """
    assert sites(source) == [("lexer", ("tokenize",), 6, 21), ("parser", ("parse",), 7, 18)]


def test_a_function_sees_the_module_binding_even_when_defined_above_it() -> None:
    source = """\
        def compile(text):
            return parser.parse(text)

        parser = rt.load("parser")
    """
    assert sites(source) == [("parser", ("parse",), 2, 18)]


def test_self_attributes_bound_in_any_method_are_handles_in_every_method_of_the_class() -> None:
    source = """\
        class Toolchain:
            lexer = rt.load("lexer")

            def compile(self, text):
                tokens = self.lexer.tokenize(text)
                return self.parser.parse(tokens, strict=True)

            def __init__(this, rt):
                this.parser = rt.load("parser")

            def later(self):
                return [lambda: self.parser.Parser]
    """
    assert sites(source) == [
        ("lexer", ("tokenize",), 5, 28),
        ("parser", ("parse",), 6, 27),
        ("parser", ("Parser",), 12, 36),
    ]


def test_each_name_of_a_chain_has_its_own_span_even_across_lines() -> None:
    source = """\
        parser = rt.load("parser")
        parser.tools.Parser(
        ).run
        x = (parser
             .tools
             .Parser.parse)(1, *more, key=2, **opts)
    """
    direct, spread = uses_in(source)
    assert direct.chain == ("tools", "Parser")
    assert direct.spans == (Span(2, 7, 2, 12), Span(2, 13, 2, 19))
    assert direct.is_call and direct.positional == 0
    assert spread.chain == ("tools", "Parser", "parse")
    assert spread.spans == (Span(5, 6, 5, 11), Span(6, 6, 6, 12), Span(6, 13, 6, 18))
    assert (spread.positional, spread.keywords) == (1, ("key",))
    assert spread.star_args and spread.star_kwargs


def test_columns_count_characters_not_bytes() -> None:
    source = 'parser = rt.load("parser")\nnote = "été"; parser.parse(note)\n'
    (use,) = find_uses(source, "app.py")
    assert use.span == Span(2, 21, 2, 26)
    assert source.splitlines()[1][use.column : use.end_column] == "parse"


def test_only_the_components_asked_for_are_found() -> None:
    source = """\
        parser = rt.load("parser")
        lexer = rt.load("lexer")
        parser.parse(lexer.tokenize("1"))
    """
    assert [u.component for u in uses_in(source, {"lexer"})] == ["lexer"]


@pytest.mark.parametrize(
    "source",
    [
        "p = rt.load(name)\np.parse()\n",
        'p = rt.load(f"parser")\np.parse()\n',
        'p = rt.load("parser", "extra")\np.parse()\n',
        'p = rt.load("parser", fresh=True)\np.parse()\n',
        "p = rt.load(name=parser)\np.parse()\n",
        'p = rt.load("parser")\np = other\np.parse()\n',
        'p = rt.load("parser")\nfor p in items:\n    p.parse()\n',
        'p = rt.load("parser")\nimport p\np.parse()\n',
        'p = rt.load("parser")\ndel p\np.parse()\n',
        'p = rt.load("parser")\nwith open(f) as p:\n    p.parse()\n',
        'p = rt.load("parser")\ntry:\n    pass\nexcept E as p:\n    p.parse()\n',
        'p = rt.load("parser")\np += 1\np.parse()\n',
        'p = rt.load("parser")\ndef f(p):\n    return p.parse()\n',
        'p = rt.load("parser")\n[p.parse() for p in parsers]\n',
        'p = rt.load("parser")\nf = lambda p: p.parse()\n',
        'p = rt.load("parser")\ndef f():\n    p = None\n    return p.parse()\n',
        'def f():\n    return p.parse()\np = rt.load("parser")\np = None\n',
        'class C:\n    def __init__(s):\n        s.p = rt.load("a")\n        s.p = rt.load("b")\n'
        "    def f(s):\n        s.p.run()\n",
        'class C:\n    @staticmethod\n    def f(s):\n        s.p.run()\n    p = rt.load("a")\n',
        'x.p = rt.load("parser")\nx.p.parse()\n',
    ],
    ids=[
        "load-of-a-variable",
        "load-of-an-f-string",
        "two-arguments",
        "extra-keyword-argument",
        "keyword-of-a-variable",
        "rebound",
        "for-target",
        "import",
        "del",
        "with-as",
        "except-as",
        "augmented",
        "parameter",
        "comprehension-variable",
        "lambda-parameter",
        "rebound-in-function",
        "module-rebinding-seen-by-functions",
        "two-components-on-one-attribute",
        "staticmethod-first-parameter",
        "attribute-of-another-object",
    ],
)
def test_what_is_not_a_use(source: str) -> None:
    assert uses_in(source) == []


def test_a_call_on_what_a_handle_returns_stops_the_chain() -> None:
    assert sites('p = rt.load("parser")\np.Parser(1).parse()\n') == [("parser", ("Parser",), 2, 2)]


# --- scan_workspace -----------------------------------------------------------------------


def test_a_scan_walks_python_files_skips_tool_folders_and_reports_broken_files(
    tmp_path: Path,
) -> None:
    uses = 'parser = rt.load("parser")\nparser.parse("1")\n'
    files = {
        "app.py": uses,
        "pkg/deep/mod.py": "\n" + uses,
        "pkg/broken.py": 'parser = rt.load("parser")\ndef (:\n',
        "pkg/latin.py": b"# -*- coding: utf-8 -*-\nx = '\xff'.load('p')\n",
        "pkg/broken_but_unrelated.py": "def (:\n",
        "pkg/generated.py": uses + "x = " + " + ".join(["parser.a"] * 5000) + "\n",
        "notes.txt": uses,
        ".venv/lib/site.py": uses,
        "node_modules/x/y.py": uses,
        ".hidden/z.py": uses,
        "venv/a.py": uses,
        "components/parser/1.0.0/parser.py": uses,
    }
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    scan = scan_workspace(tmp_path, exclude=[tmp_path / "components"])
    assert [(u.file, u.line) for u in scan.uses] == [("app.py", 2), ("pkg/deep/mod.py", 3)]
    assert [p.file for p in scan.problems] == ["pkg/broken.py", "pkg/generated.py", "pkg/latin.py"]
    broken, generated, latin = (p.message for p in scan.problems)
    assert broken == "cannot parse pkg/broken.py: line 2: invalid syntax"
    assert generated == "cannot analyse pkg/generated.py: nested too deeply"
    assert latin.startswith("cannot decode pkg/latin.py: ")


def test_a_scan_filters_components(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text('a = rt.load("a")\nb = rt.load("b")\na.x\nb.y\n')
    assert [u.chain for u in scan_workspace(tmp_path, {"b"}).uses] == [("y",)]


# --- check_uses: each kind of finding -----------------------------------------------------


def test_a_removed_function_is_reported_at_its_name_with_the_version() -> None:
    source = """\
        parser = rt.load("parser")
        parser.parse_expr("1")
        parser.parse("1")
        value = parser.LIMIT
    """
    assert findings(source, parser_api(PARSE)) == [
        "2:7 removed: parser 2.0.0 has no function 'parse_expr'",
        "4:15 removed: parser 2.0.0 has no attribute 'LIMIT'",
    ]


def test_a_removed_name_inside_a_chain_underlines_that_name() -> None:
    source = 'p = rt.load("parser")\np.tools.Parser.parse(1)\np.Parser.gone\n'
    api = parser_api(klass("parser.Parser"))
    assert findings(source, api) == [
        "2:2 removed: parser 2.0.0 has no attribute 'tools'",
        "3:9 removed: parser 2.0.0 has no attribute 'Parser.gone'",
    ]


def test_keywords_that_the_signature_does_not_have_are_reported() -> None:
    source = """\
        p = rt.load("parser")
        p.parse("1", strict=True, fast=True)
        p.parse(source="1")
        p.parse("1", **options)
        p.lenient("1", anything=1)
        p.positional(text="1")
    """
    api = parser_api(
        PARSE,
        function("parser.lenient", lambda source, **options: None),
        function("parser.positional", lambda text, /: None),
    )
    assert findings(source, api) == [
        "2:26 unknown-keyword: parse() in parser 2.0.0 has no parameter 'fast'",
        "6:13 unknown-keyword: positional() in parser 2.0.0 has a positional-only parameter 'text'",
        "6:2 missing-argument: positional() in parser 2.0.0 is missing required argument 'text'",
    ]


def test_missing_required_arguments_are_reported_together() -> None:
    source = """\
        p = rt.load("parser")
        p.compile()
        p.compile("1", mode="eval")
        p.compile(text="1", mode="eval")
        p.compile("1")
    """
    api = parser_api(function("parser.compile", lambda text, *, mode, debug=False: None))
    message = "compile() in parser 2.0.0 is missing required arguments 'text', 'mode'"
    assert findings(source, api) == [
        f"2:2 missing-argument: {message}",
        "5:2 missing-argument: compile() in parser 2.0.0 is missing required argument 'mode'",
    ]


def test_too_many_positional_arguments_are_reported_unless_the_function_takes_star_args() -> None:
    source = 'p = rt.load("parser")\np.parse("1", "2")\np.join("a", "b", "c")\np.tick(1)\n'
    api = parser_api(
        PARSE,
        function("parser.join", lambda *parts: None),
        function("parser.tick", lambda: None),
    )
    assert findings(source, api) == [
        "2:2 too-many-arguments: parse() in parser 2.0.0 takes 1 positional argument, 2 given",
        "4:2 too-many-arguments: tick() in parser 2.0.0 takes 0 positional arguments, 1 given",
    ]


def test_calling_a_module_or_a_data_attribute_is_reported() -> None:
    source = """\
        p = rt.load("parser")
        p.nodes()
        p.VERSION()
        p.DEFAULTS()
        p.parse_fn()
    """
    api = parser_api(
        ApiObject("parser.nodes", Kind.MODULE),
        attribute("parser.VERSION", "'2.0.0'"),
        attribute("parser.DEFAULTS", "{'strict': False}"),
        attribute("parser.parse_fn", "make_parser()"),  # may well be callable
    )
    assert findings(source, api) == [
        "2:2 not-callable: 'nodes' in parser 2.0.0 is a module, not callable",
        "3:2 not-callable: 'VERSION' in parser 2.0.0 is an attribute, not callable",
        "4:2 not-callable: 'DEFAULTS' in parser 2.0.0 is an attribute, not callable",
    ]


def test_calls_that_unpack_arguments_check_only_their_explicit_keywords() -> None:
    source = """\
        p = rt.load("parser")
        p.compile(*args)
        p.compile(**options)
        p.compile("1", "2", "3", *rest)
        p.compile(*args, fast=True, **options)
    """
    api = parser_api(function("parser.compile", lambda text, *, mode: None))
    assert findings(source, api) == [
        "5:17 unknown-keyword: compile() in parser 2.0.0 has no parameter 'fast'",
    ]


def test_a_class_call_checks_its_init_without_self() -> None:
    source = """\
        p = rt.load("parser")
        p.Parser("1 + 2")
        p.Parser()
        p.Plain(1)
        p.Child(strict=True)
    """
    api = parser_api(
        klass("parser.Parser"),
        function("parser.Parser.__init__", lambda self, text: None),
        klass("parser.Plain"),
        klass("parser.Child", "Parser"),
    )
    assert findings(source, api) == [
        "3:2 missing-argument: Parser() in parser 2.0.0 is missing required argument 'text'",
        "4:2 too-many-arguments: Plain() in parser 2.0.0 takes 0 positional arguments, 1 given",
        "5:8 unknown-keyword: Child() in parser 2.0.0 has no parameter 'strict'",
        "5:2 missing-argument: Child() in parser 2.0.0 is missing required argument 'text'",
    ]


def test_methods_reached_through_the_class_are_unbound_except_classmethods() -> None:
    source = """\
        p = rt.load("parser")
        p.Parser.parse("1")
        p.Parser.from_text("1")
        p.Parser.check("1")
    """
    api = parser_api(
        klass("parser.Parser"),
        function("parser.Parser.parse", lambda self, text: None),
        function("parser.Parser.from_text", lambda cls, text: None, "classmethod"),
        function("parser.Parser.check", lambda text: None, "staticmethod"),
    )
    assert findings(source, api) == [
        "2:9 missing-argument: Parser.parse() in parser 2.0.0 is missing required argument 'text'",
    ]


# --- check_uses: a factory's handle is an instance ----------------------------------------


COUNTER = (
    klass("parser.Counter"),
    function("parser.Counter.__init__", lambda self: None),
    function("parser.Counter.inc", lambda self, by=1: None),
    function("parser.Counter.reset", lambda value: None, "staticmethod"),
    function("parser.Counter.make", lambda cls, start: None, "classmethod"),
    attribute("parser.Counter.value_", "0"),
    attribute("parser.Counter.total", None),  # a property
    function("parser.create", lambda: None),
)


def test_methods_of_a_factory_instance_are_bound() -> None:
    source = """\
        counter = rt.load("parser")
        counter.inc()
        counter.inc(2)
        counter.reset(0)
        counter.make(1)
        counter.total
        counter.total()
        counter.value_
    """
    assert findings(source, parser_api(*COUNTER, handle_root="parser.Counter")) == []


def test_a_factory_instance_reports_missing_methods_but_not_unseen_attributes() -> None:
    source = """\
        counter = rt.load("parser")
        counter.inc(1, 2)
        counter.reset()
        counter.decrement()
        counter.cache
        counter.value_()
        counter.create()
    """
    assert findings(source, parser_api(*COUNTER, handle_root="parser.Counter")) == [
        "2:8 too-many-arguments: inc() in parser 2.0.0 takes 1 positional argument, 2 given",
        "3:8 missing-argument: reset() in parser 2.0.0 is missing required argument 'value'",
        "4:8 removed: parser 2.0.0 has no function 'decrement'",
        "6:8 not-callable: 'value_' in parser 2.0.0 is an attribute, not callable",
        "7:8 removed: parser 2.0.0 has no function 'create'",
    ]


def test_a_factory_whose_class_is_unknown_is_not_checked() -> None:
    """Without the class, the handle's instance is opaque; the same API read as a plain
    module entry reports the method as missing from the module."""
    source = 'counter = rt.load("parser")\ncounter.inc(1, 2)\n'
    api = parser_api(function("parser.create", lambda: None), handle_root="parser")
    assert findings(source, replace(api, factory="create")) == []
    assert findings(source, api) == ["2:8 removed: parser 2.0.0 has no function 'inc'"]


# --- check_uses: what the analysis cannot see through is never reported --------------------


def test_inherited_members_are_found_through_bases_inside_the_version() -> None:
    source = 'c = rt.load("parser")\nc.inc()\nc.base_only(1)\nc.gone()\n'
    api = parser_api(
        klass("parser.Counter", "_base.Base", "Generic[T]"),
        function("parser.Counter.inc", lambda self: None),
        alias("parser.Generic", "typing.Generic"),  # these two add nothing: still complete
        ApiObject("parser._base", Kind.MODULE),
        klass("parser._base.Base", "ABC"),
        alias("parser._base.ABC", "abc.ABC"),
        function("parser._base.Base.base_only", lambda self, x: None),
        handle_root="parser.Counter",
    )
    assert findings(source, api) == ["4:2 removed: parser 2.0.0 has no function 'gone'"]


@pytest.mark.parametrize(
    ("objects", "source"),
    [
        ((klass("parser.C", "dict"),), "p.C.anything()\np.C(1, 2, x=3)"),
        ((klass("parser.C", "Unknown"),), "p.C.anything()\np.C(1, 2, x=3)"),
        ((klass("parser.C", decorators=("dataclass",)),), "p.C(1, 2, x=3)"),
        (
            (klass("parser.C"), function("parser.C.__new__", lambda cls, *a: None)),
            "p.C(1, 2, x=3)",
        ),
        (
            (klass("parser.C"), function("parser.C.__getattr__", lambda self, name: None)),
            "p.C.anything",
        ),
        ((function("parser.__getattr__", lambda name: None),), "p.anything()"),
        ((alias("parser.dumps", "json.dumps"),), "p.dumps(1, 2, x=3)\np.dumps.x.y()"),
        ((function("parser.f", lambda: None, "some_decorator"),), "p.f(1, 2, x=3)"),
        ((function("parser.f", lambda: None),), "p.f.__name__\np.__noodle_version__"),
        ((function("parser.f", lambda: None),), "p.f.cache_clear()"),
        ((attribute("parser.f", "make()"),), "p.f(1).x\np.f.x()"),
        ((function("parser.f", lambda *a, **k: None),), "p.f(1, 2, x=3)"),
    ],
    ids=[
        "external-base",
        "unresolvable-base",
        "class-decorator",
        "custom-new",
        "class-getattr",
        "module-getattr",
        "external-import",
        "unknown-decorator",
        "dunder-names",
        "attribute-of-a-function",
        "attribute-of-data",
        "catch-all-signature",
    ],
)
def test_what_the_analysis_cannot_see_through_is_not_reported(
    objects: tuple[ApiObject, ...], source: str
) -> None:
    assert findings(f'p = rt.load("parser")\n{source}\n', parser_api(*objects)) == []


def test_aliases_inside_the_version_are_followed_and_checked() -> None:
    source = 'p = rt.load("parser")\np.parse("1", fast=True)\n'
    api = parser_api(
        ApiObject("parser._impl", Kind.MODULE),
        function("parser._impl.run", lambda source: None),
        alias("parser.parse", "parser._impl.run"),
    )
    message = "parse() in parser 2.0.0 has no parameter 'fast'"
    assert findings(source, api) == [f"2:13 unknown-keyword: {message}"]


def test_signature_keeping_decorators_are_still_checked() -> None:
    source = 'p = rt.load("parser")\np.parse("1", fast=True)\n'
    api = parser_api(function("parser.parse", lambda text: None, "functools.lru_cache(64)"))
    message = "parse() in parser 2.0.0 has no parameter 'fast'"
    assert findings(source, api) == [f"2:13 unknown-keyword: {message}"]


def test_uses_of_other_components_are_left_alone() -> None:
    source = 'p = rt.load("lexer")\np.gone()\n'
    assert findings(source, parser_api()) == []


def test_findings_carry_the_file_and_component_of_the_use() -> None:
    (use,) = find_uses('p = rt.load("parser")\np.gone()\n', "src/app.py")
    assert check_uses([use], parser_api()) == [
        Finding(
            "src/app.py", 2, 2, 2, 6, "parser", "parser 2.0.0 has no function 'gone'", "removed"
        )
    ]


# --- end to end: extract_api on real version folders --------------------------------------


def test_the_demo_toolchain_breaks_under_the_demo_parser_2_0_0(tmp_path: Path) -> None:
    """The demo's application calls ``self.parser.parse(tokens)``; 2.0.0 renamed it."""
    scan = scan_workspace(DEMO_PACKAGE, {"parser"}, exclude=[DEMO_PACKAGE / "components"])
    assert scan.problems == []
    apis = {}
    for version in ("1.0.0", "2.0.0"):
        folder = publish(tmp_path, release("parser", version))
        apis[version] = extract_api(folder, "parser", component="parser", version=version)
    assert check_uses(scan.uses, apis["1.0.0"]) == []
    toolchain = (DEMO_PACKAGE / "toolchain.py").read_text().splitlines()
    (line,) = [n for n, text in enumerate(toolchain, 1) if "self.parser.parse(" in text]
    column = toolchain[line - 1].index("self.parser.parse(") + len("self.parser.")
    assert check_uses(scan.uses, apis["2.0.0"]) == [
        Finding(
            "toolchain.py",
            line,
            column,
            line,
            column + len("parse"),
            "parser",
            "parser 2.0.0 has no function 'parse'",
            "removed",
        )
    ]


def test_a_factory_component_is_checked_as_an_instance_end_to_end(tmp_path: Path) -> None:
    counter_2 = """\
        class Counter:
            def __init__(self, start=0):
                self.value_ = start

            def inc(self, *, by):
                self.value_ += by
                return self.value_

            @staticmethod
            def describe(value):
                return str(value)


        def create():
            return Counter()
    """
    folder = write_component(tmp_path, "counter", "2.0.0", counter_2, entry="counter:create")
    api = extract_api(folder, "counter:create", component="counter", version="2.0.0")
    workspace = tmp_path / "app"
    workspace.mkdir()
    (workspace / "main.py").write_text(
        textwrap.dedent("""\
        class App:
            def __init__(self, rt):
                self.counter = rt.load("counter")

            def tick(self):
                self.counter.inc(by=1)
                self.counter.inc(1)
                self.counter.describe(self.counter.value_)
                self.counter.reset()
    """)
    )
    found = check_uses(scan_workspace(workspace).uses, api)
    assert [(f.file, f.line, f.column, f.code, f.message) for f in found] == [
        (
            "main.py",
            7,
            21,
            "too-many-arguments",
            "inc() in counter 2.0.0 takes 0 positional arguments, 1 given",
        ),
        (
            "main.py",
            7,
            21,
            "missing-argument",
            "inc() in counter 2.0.0 is missing required argument 'by'",
        ),
        ("main.py", 9, 21, "removed", "counter 2.0.0 has no function 'reset'"),
    ]


def test_a_factory_returning_a_class_the_analysis_cannot_tell_reports_nothing(
    tmp_path: Path,
) -> None:
    code = """\
        class Counter:
            def inc(self):
                return 1


        def create():
            counter = Counter()
            return counter
    """
    folder = write_component(tmp_path, "counter", "1.0.0", code, entry="counter:create")
    api = extract_api(folder, "counter:create", component="counter", version="1.0.0")
    assert check_uses(find_uses('c = rt.load("counter")\nc.inc()\n', "app.py"), api) == []
