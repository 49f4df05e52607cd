"""Public API extraction (``analysis.extract``): hand-written versions on disk, then the
unmodified tomli and packaging releases from PyPI (``tests/fixtures/packages``).

Every version here is read with ``ast`` only; one test proves nothing is imported.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from helpers.project import FIXTURES, Project
from noodle_upgrade.analysis.api import Api, ApiObject, Kind, Parameter, ParameterKind
from noodle_upgrade.analysis.extract import extract_api
from noodle_upgrade.errors import ValidationError

PACKAGES = FIXTURES / "packages"
P = ParameterKind


def extract(
    project: Project, code: str | Mapping[str, str], *, name: str = "mod", entry: str | None = None
) -> Api:
    """Write ``components/<name>/1.0.0/`` (sources are dedented) and extract its API."""
    folder = project.add(name, "1.0.0", code, entry=entry)
    return extract_api(folder, entry or name, component=name, version="1.0.0")


def obj(api: Api, path: str) -> ApiObject:
    found = api.get(path)
    assert found is not None, f"{path} not in {sorted(api.objects)}"
    return found


def resolved(api: Api, path: str) -> ApiObject:
    found = api.resolve(path)
    assert found is not None, f"{path} does not resolve"
    return found


def signature(function: ApiObject) -> list[tuple[str, ParameterKind, str | None]]:
    return [(p.name, p.kind, p.default) for p in function.parameters]


# ---------------------------------------------------------------- functions and classes


def test_functions_keep_every_parameter_kind_default_and_annotation(project: Project) -> None:
    api = extract(
        project,
        """\
        def f(a, /, b: int = 1, *args: str, c, d: "X" = None, **kw: object) -> list[int]:
            return []


        async def fetch(url, *, timeout=2.5 * 60):
            pass
        """,
    )
    f = obj(api, "mod.f")
    assert f.kind is Kind.FUNCTION
    assert f.parameters == (
        Parameter("a", P.POSITIONAL_ONLY),
        Parameter("b", P.POSITIONAL_OR_KEYWORD, "1", "int"),
        Parameter("args", P.VAR_POSITIONAL, None, "str"),
        Parameter("c", P.KEYWORD_ONLY),
        Parameter("d", P.KEYWORD_ONLY, "None", "'X'"),
        Parameter("kw", P.VAR_KEYWORD, None, "object"),
    )
    assert [p.required for p in f.parameters] == [True, False, False, True, False, False]
    assert f.returns == "list[int]"
    assert f.location is not None and (f.location.file, f.location.line) == ("mod.py", 1)
    fetch = obj(api, "mod.fetch")
    assert fetch.kind is Kind.FUNCTION
    assert signature(fetch) == [
        ("url", P.POSITIONAL_OR_KEYWORD, None),
        ("timeout", P.KEYWORD_ONLY, "2.5 * 60"),
    ]
    assert obj(api, "mod").members == ("f", "fetch")


def test_classes_keep_bases_decorators_and_members_in_order(project: Project) -> None:
    api = extract(
        project,
        """\
        import abc
        import dataclasses
        import typing

        T = typing.TypeVar("T")


        class Base(abc.ABC):
            pass


        @dataclasses.dataclass(frozen=True)
        class Box(Base, typing.Generic[T], metaclass=abc.ABCMeta):
            size: int = 0

            def put(self, item: T) -> None:
                pass

            @staticmethod
            def empty() -> "Box[T]":
                pass

            @classmethod
            def of(cls, *items: T) -> "Box[T]":
                pass

            class Lid:
                def open(self):
                    pass
        """,
    )
    box = obj(api, "mod.Box")
    assert box.kind is Kind.CLASS
    assert box.bases == ("Base", "typing.Generic[T]")
    assert box.decorators == ("dataclasses.dataclass(frozen=True)",)
    assert box.members == ("size", "put", "empty", "of", "Lid")
    assert box.location is not None and box.location.line == 13
    assert signature(obj(api, "mod.Box.put")) == [
        ("self", P.POSITIONAL_OR_KEYWORD, None),
        ("item", P.POSITIONAL_OR_KEYWORD, None),
    ]
    empty, of = obj(api, "mod.Box.empty"), obj(api, "mod.Box.of")
    assert (empty.kind, empty.decorators, empty.parameters) == (
        Kind.FUNCTION,
        ("staticmethod",),
        (),
    )
    assert (of.kind, of.decorators) == (Kind.FUNCTION, ("classmethod",))
    assert obj(api, "mod.Box.Lid").kind is Kind.CLASS
    assert obj(api, "mod.Box.Lid.open").kind is Kind.FUNCTION
    assert [m.name for m in api.members("mod.Box")] == list(box.members)


def test_properties_are_attributes_not_callables(project: Project) -> None:
    api = extract(
        project,
        """\
        import functools


        class Account:
            @property
            def balance(self) -> int:
                return 0

            @balance.setter
            def balance(self, value: int) -> None:
                pass

            @functools.cached_property
            def report(self) -> str:
                return ""

            def close(self):
                pass
        """,
    )
    balance = obj(api, "mod.Account.balance")
    assert balance.kind is Kind.ATTRIBUTE
    assert (balance.value, balance.annotation, balance.parameters) == (None, "int", ())
    assert balance.location is not None and balance.location.line == 6  # the getter's def
    assert balance.decorators == ("property",)
    report = obj(api, "mod.Account.report")
    assert (report.kind, report.decorators) == (Kind.ATTRIBUTE, ("functools.cached_property",))
    assert obj(api, "mod.Account.close").kind is Kind.FUNCTION
    assert obj(api, "mod.Account").members == ("balance", "report", "close")


# ------------------------------------------------------------------------- attributes


def test_module_and_class_attributes_with_values_and_annotations(project: Project) -> None:
    api = extract(
        project,
        """\
        LIMIT = 10
        ratio: float = 0.5
        name: str
        low, high = 1, (2 + 3)
        first, *rest = load()
        left = right = "both"


        class Config:
            debug = False
            level: int
        """,
    )

    def attribute(path: str) -> tuple[Kind, str | None, str | None]:
        found = obj(api, path)
        return found.kind, found.value, found.annotation

    a = Kind.ATTRIBUTE
    assert attribute("mod.LIMIT") == (a, "10", None)
    assert attribute("mod.ratio") == (a, "0.5", "float")
    assert attribute("mod.name") == (a, None, "str")
    assert attribute("mod.low") == (a, "1", None)
    assert attribute("mod.high") == (a, "2 + 3", None)
    assert attribute("mod.first") == (a, "load()", None)
    assert attribute("mod.rest") == (a, "load()", None)
    assert attribute("mod.left") == attribute("mod.right") == (a, "'both'", None)
    assert attribute("mod.Config.debug") == (a, "False", None)
    assert attribute("mod.Config.level") == (a, None, "int")
    members = ("LIMIT", "ratio", "name", "low", "high", "first", "rest", "left", "right", "Config")
    assert obj(api, "mod").members == members


def test_instance_attributes_come_from_init_only(project: Project) -> None:
    api = extract(
        project,
        """\
        class Point:
            z: float

            def __init__(this, x, y, label=None):
                this.x = x
                this.left, this.right = y
                this.z = 0.0
                if label:
                    this.label: str = label
                other = object()
                other.hidden = 1

                def helper():
                    this.nested = 2

            def move(self):
                self.moved = True
        """,
    )
    point = obj(api, "mod.Point")
    assert point.members == ("z", "__init__", "x", "left", "right", "label", "move")
    x = obj(api, "mod.Point.x")
    assert (x.kind, x.value) == (Kind.ATTRIBUTE, "x")
    assert x.location is not None and x.location.line == 5
    assert obj(api, "mod.Point.left").value == "y"
    z = obj(api, "mod.Point.z")  # the class-level annotation survives the assignment
    assert (z.value, z.annotation) == ("0.0", "float")
    assert obj(api, "mod.Point.label").annotation == "str"
    for absent in ("hidden", "nested", "moved"):
        assert api.get(f"mod.Point.{absent}") is None


def test_the_last_binding_wins_and_keeps_the_first_position(project: Project) -> None:
    api = extract(
        project,
        """\
        def run(a):
            pass


        VERSION = "1"


        def run(a, b=2):
            pass


        VERSION = "2"
        run = run
        """,
    )
    assert obj(api, "mod").members == ("run", "VERSION")
    version = obj(api, "mod.VERSION")
    assert version.value == "'2'"
    assert version.location is not None and version.location.line == 12
    assert obj(api, "mod.run").kind is Kind.ATTRIBUTE  # ``run = run`` rebinds it last


def test_conditional_definitions_walk_every_branch(project: Project) -> None:
    api = extract(
        project,
        """\
        import sys
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from collections.abc import Sequence

        try:
            from _speedups import encode
        except ImportError:
            def encode(data, *, strict=True):
                pass

        if sys.version_info >= (3, 12):
            def pick(items):
                pass
        else:
            def pick(items, default=None):
                pass

        with open(__file__):
            OPENED = True

        for _name in ("a", "b"):
            LOOPED = _name

        if __name__ == "__main__":
            DEMO = pick([])
        """,
    )
    sequence = obj(api, "mod.Sequence")
    assert (sequence.kind, sequence.target) == (Kind.ALIAS, "collections.abc.Sequence")
    encode = obj(api, "mod.encode")  # the fallback is defined last
    assert signature(encode) == [
        ("data", P.POSITIONAL_OR_KEYWORD, None),
        ("strict", P.KEYWORD_ONLY, "True"),
    ]
    assert [p.name for p in obj(api, "mod.pick").parameters] == ["items", "default"]
    assert obj(api, "mod.OPENED").value == "True"
    assert obj(api, "mod.LOOPED").value == "_name"
    assert api.get("mod.DEMO") is None  # a script's code, never run on import


# ----------------------------------------------------------------------------- imports


def test_absolute_imports_are_aliases_to_outside_paths(project: Project) -> None:
    api = extract(
        project,
        """\
        import os
        import os.path
        import xml.etree.ElementTree as ET
        from typing import Any as Anything
        from json import *
        """,
    )
    assert {p: o.target for p, o in api.objects.items() if o.kind is Kind.ALIAS} == {
        "mod.os": "os",
        "mod.ET": "xml.etree.ElementTree",
        "mod.Anything": "typing.Any",
    }
    assert obj(api, "mod").members == ("os", "ET", "Anything")
    assert resolved(api, "mod.Anything").kind is Kind.ALIAS  # outside: stays an alias


PACKAGE = {
    "pkg/__init__.py": """\
        from . import sub
        from .sub import build as make
        from .sub.deep import *
        from ._impl import *
        from .loads import loads
        import pkg.sub
        """,
    "pkg/_impl.py": """\
        __all__ = ["Engine", "start"]

        class Engine:
            pass

        def start():
            pass

        def other():
            pass
        """,
    "pkg/loads.py": "def loads(text):\n    pass\n",
    "pkg/sub/__init__.py": """\
        def build(size, /):
            pass
        """,
    "pkg/sub/deep.py": """\
        from .. import sub
        from ..sub import build
        from .._impl import Engine as _Engine

        def dig(depth=3):
            pass

        _hidden = 1
        """,
    "pkg/notes.txt": "not python\n",
    "pkg/data/readme.py": "# a folder without __init__.py is not a package\n",
    "pkg/__pycache__/sub.cpython-311.py": "broken(\n",
}


def test_relative_imports_resolve_inside_the_version(project: Project) -> None:
    api = extract(project, PACKAGE, name="pkg")
    sub = obj(api, "pkg.sub")  # ``from . import sub``: the submodule itself, not an alias
    assert sub.kind is Kind.MODULE
    assert sub.location is not None and sub.location.file == "pkg/sub/__init__.py"
    make = obj(api, "pkg.make")
    assert (make.kind, make.target) == (Kind.ALIAS, "pkg.sub.build")
    assert signature(resolved(api, "pkg.make")) == [("size", P.POSITIONAL_ONLY, None)]
    assert obj(api, "pkg.sub.deep.sub").target == "pkg.sub"
    assert obj(api, "pkg.sub.deep.build").target == "pkg.sub.build"
    assert resolved(api, "pkg.sub.deep._Engine").path == "pkg._impl.Engine"
    assert obj(api, "pkg.pkg").target == "pkg"  # ``import pkg.sub`` binds ``pkg``


def test_star_imports_copy_public_names_or_all(project: Project) -> None:
    api = extract(project, PACKAGE, name="pkg")
    assert obj(api, "pkg.dig").target == "pkg.sub.deep.dig"  # no __all__: public names
    for private in ("_hidden", "_Engine"):
        assert api.get(f"pkg.{private}") is None
    assert obj(api, "pkg.Engine").target == "pkg._impl.Engine"  # __all__ decides
    assert resolved(api, "pkg.start").kind is Kind.FUNCTION
    assert api.get("pkg.other") is None


def test_packages_walk_submodules_and_skip_what_is_not_python(project: Project) -> None:
    api = extract(project, PACKAGE, name="pkg")
    modules = sorted(p for p, o in api.objects.items() if o.kind is Kind.MODULE)
    assert modules == ["pkg", "pkg._impl", "pkg.sub", "pkg.sub.deep"]
    assert obj(api, "pkg.sub").members == ("build", "deep")
    deep = obj(api, "pkg.sub.deep.dig")
    assert deep.location is not None and (deep.location.file, deep.location.line) == (
        "pkg/sub/deep.py",
        5,
    )
    assert "notes" not in obj(api, "pkg").members and "data" not in obj(api, "pkg").members


def test_a_name_the_package_binds_wins_over_its_submodule(project: Project) -> None:
    api = extract(project, PACKAGE, name="pkg")
    loads = obj(api, "pkg.loads")  # as at run time: ``pkg.loads`` is the function
    assert (loads.kind, loads.target) == (Kind.ALIAS, "pkg.loads.loads")
    assert resolved(api, "pkg.loads").kind is Kind.FUNCTION
    assert obj(api, "pkg").members.count("loads") == 1


def test_sibling_modules_reached_by_relative_imports_are_read(project: Project) -> None:
    api = extract(
        project,
        {
            "app.py": "from .helpers import greet, Greeter as G\nfrom .shared import *\n",
            "helpers.py": "def greet(name, punctuation='!'):\n    pass\n\n\nclass Greeter: ...\n",
            "shared.py": "__all__ = ['TIMEOUT']\nTIMEOUT = 5\nRETRIES = 3\n",
            "unused.py": "def never():\n    pass\n",
        },
        name="app",
    )
    assert obj(api, "app.greet").target == "helpers.greet"
    assert [p.name for p in resolved(api, "app.greet").parameters] == ["name", "punctuation"]
    assert resolved(api, "app.G").kind is Kind.CLASS
    assert resolved(api, "app.TIMEOUT").value == "5"
    assert api.get("app.RETRIES") is None
    assert api.get("unused") is None  # only what the version's imports reach


def test_import_cycles_terminate(project: Project) -> None:
    api = extract(
        project,
        {
            "ring/__init__.py": "from .a import *\n",
            "ring/a.py": "from .b import *\nfrom .a import *\nA = 1\n",
            "ring/b.py": "from .a import *\nB = 2\nfrom . import b as b\n",
        },
        name="ring",
    )
    assert resolved(api, "ring.B").value == "2"
    assert obj(api, "ring.b").kind is Kind.MODULE


# ------------------------------------------------------------------------------ __all__


@pytest.mark.parametrize(
    ("source", "exports"),
    [
        ("__all__ = ['a', 'b']", ("a", "b")),
        ("__all__ = ('a',)\n__all__ += ['b']", ("a", "b")),
        ("__all__: list[str] = ['a']\n__all__.extend(['b'])\n__all__.append('c')", ("a", "b", "c")),
        ("__all__ = ['a'] + ['b', 'a']", ("a", "b")),
        ("__all__ = [name for name in dir()]", None),
        ("__all__ = ['a']\n__all__ += other.__all__", None),
        ("A = 1", None),
    ],
)
def test_all_is_read_when_it_is_a_literal(
    project: Project, source: str, exports: tuple[str, ...] | None
) -> None:
    api = extract(project, source + "\n")
    assert obj(api, "mod").exports == exports


def test_all_is_read_and_imports_stay_aliases(project: Project) -> None:
    api = extract(
        project,
        {
            "pkg/__init__.py": "__all__ = ['run']\nfrom .core import run, stop\n",
            "pkg/core.py": "def run():\n    pass\n\ndef stop():\n    pass\n",
            "pkg/_private.py": "X = 1\n",
        },
        name="pkg",
    )
    # Which names are public is the diff's rule (griffe's); the model keeps them all.
    assert obj(api, "pkg").exports == ("run",)
    assert (obj(api, "pkg.stop").kind, obj(api, "pkg.stop").target) == (Kind.ALIAS, "pkg.core.stop")
    assert obj(api, "pkg._private.X").value == "1"


# ------------------------------------------------------------------------- handle root


COUNTER = """\
    from .models import Gauge


    class Counter:
        def inc(self):
            pass


    def create() -> "Counter":
        return Counter()


    def build():
        if True:
            return Counter()
        return Counter()


    def gauge():
        return Gauge(unit="s")


    def either(flag):
        if flag:
            return Counter()
        return Gauge()


    def plain():
        return {}
    """


@pytest.mark.parametrize(
    ("factory", "handle_root"),
    [
        (None, "counter"),
        ("create", "counter.Counter"),  # return annotation
        ("build", "counter.Counter"),  # every return calls Counter
        ("gauge", "models.Gauge"),  # a class imported into the module
        ("Counter", "counter.Counter"),  # the factory is the class
        ("either", "counter"),  # two classes: cannot tell
        ("plain", "counter"),
        ("missing", "counter"),
    ],
)
def test_handle_root_follows_a_factory_to_the_class_it_returns(
    project: Project, factory: str | None, handle_root: str
) -> None:
    entry = "counter" if factory is None else f"counter:{factory}"
    code = {"counter.py": COUNTER, "models.py": "class Gauge:\n    pass\n"}
    api = extract(project, code, name="counter", entry=entry)
    assert (api.root, api.handle_root) == ("counter", handle_root)


def test_handle_root_of_a_factory_imported_from_a_submodule(project: Project) -> None:
    code = {
        "svc/__init__.py": "from .factory import make\n",
        "svc/factory.py": "from .engine import Engine\n\n\ndef make() -> Engine: ...\n",
        "svc/engine.py": "class Engine:\n    pass\n",
    }
    api = extract(project, code, name="svc", entry="svc:make")
    assert api.handle_root == "svc.engine.Engine"


# ------------------------------------------------------------------------------ errors


def test_a_syntax_error_names_the_file_line_and_column(project: Project) -> None:
    folder = project.add("pkg", "1.0.0", {"pkg/__init__.py": "", "pkg/bad.py": "x = 1\ndef f(:\n"})
    with pytest.raises(ValidationError) as caught:
        extract_api(folder, "pkg", component="pkg", version="1.0.0")
    assert caught.value.code == "analysis-error"
    assert caught.value.message == f"{folder / 'pkg' / 'bad.py'}:2:7: invalid syntax"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (b"x = '\xe9'\n", "(unicode error) 'utf-8' codec can't decode byte 0xe9"),
        (b"# -*- coding: klingon -*-\nx = 1\n", "unknown encoding: klingon"),
        (b"x = 1\x00\n", "source code string cannot contain null bytes"),
        (b"X = " + b"+".join([b"a"] * 200_000) + b"\n", "too deeply nested to parse"),
    ],
)
def test_unreadable_sources_are_analysis_errors(
    project: Project, source: bytes, message: str
) -> None:
    folder = project.add("mod", "1.0.0", "")
    (folder / "mod.py").write_bytes(source)
    with pytest.raises(ValidationError) as caught:
        extract_api(folder, "mod", component="mod", version="1.0.0")
    assert caught.value.code == "analysis-error"
    assert caught.value.message.startswith(f"{folder / 'mod.py'}:")
    assert message in caught.value.message


def test_a_declared_encoding_is_honoured(project: Project) -> None:
    folder = project.add("mod", "1.0.0", "")
    (folder / "mod.py").write_bytes(b"# -*- coding: latin-1 -*-\nSIGN = '\xe9'\n")
    api = extract_api(folder, "mod", component="mod", version="1.0.0")
    assert obj(api, "mod.SIGN").value == "'é'"


@pytest.mark.parametrize(
    ("entry", "files", "message"),
    [
        ("gone", {}, "entry module 'gone' not found: expected gone.py or gone/__init__.py"),
        ("ns", {"ns/part.py": ""}, "ns/ has no __init__.py; namespace packages are not analysed"),
        ("mod:", {}, "entry 'mod:' is not 'module' or 'module:factory'"),
        ("a-b", {}, "entry 'a-b' is not 'module' or 'module:factory'"),
    ],
)
def test_a_missing_or_malformed_entry_is_refused(
    project: Project, entry: str, files: dict[str, str], message: str
) -> None:
    folder = project.add("mod", "1.0.0", {"mod.py": "", **files})
    with pytest.raises(ValidationError) as caught:
        extract_api(folder, entry, component="mod", version="1.0.0")
    assert caught.value.code == "analysis-error"
    assert caught.value.message.startswith(f"{folder}: ")
    assert message in caught.value.message


def test_the_code_is_never_imported(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    folder = project.add(
        "boom",
        "1.0.0",
        f"open({str(marker)!r}, 'w').close()\nraise SystemExit('imported!')\n\ndef f(): ...\n",
    )
    modules_before = set(sys.modules)
    api = extract_api(folder, "boom", component="boom", version="1.0.0")
    assert obj(api, "boom.f").kind is Kind.FUNCTION
    assert not marker.exists()
    assert set(sys.modules) == modules_before


def test_a_symlinked_package_loop_is_walked_once(project: Project) -> None:
    folder = project.add("pkg", "1.0.0", {"pkg/__init__.py": "", "pkg/a.py": "A = 1\n"})
    (folder / "pkg" / "again").symlink_to(folder / "pkg", target_is_directory=True)
    api = extract_api(folder, "pkg", component="pkg", version="1.0.0")
    assert obj(api, "pkg.a.A").value == "1"
    assert api.get("pkg.again.again.a") is None


# ------------------------------------------------------------------- real packages


@pytest.mark.parametrize("release", ["2.0.1", "2.2.1"])
def test_tomli_public_api(release: str) -> None:
    api = extract_api(PACKAGES / "tomli" / release, "tomli", component="tomli", version=release)
    assert (api.component, api.version, api.root, api.handle_root) == (
        "tomli",
        release,
        "tomli",
        "tomli",
    )
    assert obj(api, "tomli").exports == ("loads", "load", "TOMLDecodeError")
    loads = obj(api, "tomli.loads")
    assert (loads.kind, loads.target) == (Kind.ALIAS, "tomli._parser.loads")
    function = resolved(api, "tomli.loads")
    assert function.path == "tomli._parser.loads"
    assert function.parameters == (
        Parameter("__s", P.POSITIONAL_OR_KEYWORD, None, "str"),  # tomli's own spelling
        Parameter("parse_float", P.KEYWORD_ONLY, "float", "ParseFloat"),
    )
    assert function.returns == "dict[str, Any]"
    error = resolved(api, "tomli.TOMLDecodeError")
    assert (error.kind, error.bases) == (Kind.CLASS, ("ValueError",))
    assert obj(api, "tomli._parser").kind is Kind.MODULE
    assert obj(api, "tomli.__version__").value == repr(release)


def packaging_api(release: str) -> Api:
    folder = PACKAGES / "packaging" / release
    return extract_api(folder, "packaging", component="packaging", version=release)


@pytest.mark.parametrize("release", ["21.3", "22.0"])
def test_packaging_public_api(release: str) -> None:
    api = packaging_api(release)
    version = obj(api, "packaging.version.Version")
    assert (version.kind, version.bases) == (Kind.CLASS, ("_BaseVersion",))
    assert signature(obj(api, "packaging.version.parse")) == [
        ("version", P.POSITIONAL_OR_KEYWORD, None)
    ]
    epoch = obj(api, "packaging.version.Version.epoch")
    assert (epoch.kind, epoch.annotation) == (Kind.ATTRIBUTE, "int")
    about = resolved(api, "packaging.__version__")
    assert (about.path, about.value) == ("packaging.__about__.__version__", repr(release))
    specifier = resolved(api, "packaging.specifiers.Specifier")
    assert specifier.kind is Kind.CLASS
    assert obj(api, "packaging").members[-1] == "version"  # submodules follow its own names
    assert "packaging.tags" in api.objects and "packaging.markers" in api.objects


def test_packaging_22_dropped_legacy_version() -> None:
    old, new = packaging_api("21.3"), packaging_api("22.0")
    assert obj(old, "packaging.version.LegacyVersion").kind is Kind.CLASS
    assert "LegacyVersion" in (obj(old, "packaging.version").exports or ())
    assert new.get("packaging.version.LegacyVersion") is None
    assert "packaging._parser" in new.objects and "packaging._parser" not in old.objects
