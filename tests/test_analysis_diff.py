"""API diff between two versions: griffe's breakage kinds, its exemptions, additions and the
bump check. Every case writes two small versions of a package ``pkg`` and extracts them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from packaging.version import Version

from noodle_upgrade.analysis.api import Location
from noodle_upgrade.analysis.diff import (
    Addition,
    ApiDiff,
    Breakage,
    BreakageKind,
    bump_finding,
    diff_api,
    suggested_bump,
)
from noodle_upgrade.analysis.extract import extract_api
from noodle_upgrade.models import BumpKind

Sources = str | dict[str, str]  # one module ``pkg.py``, or files of a package by path


def _version(folder: Path, sources: Sources) -> Path:
    files = {"pkg.py": sources} if isinstance(sources, str) else sources
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


def _diff(tmp_path: Path, old: Sources, new: Sources) -> ApiDiff:
    before = extract_api(_version(tmp_path / "1.0", old), "pkg", component="pkg", version="1.0")
    after = extract_api(_version(tmp_path / "2.0", new), "pkg", component="pkg", version="2.0")
    return diff_api(before, after)


def _breaks(diff: ApiDiff) -> list[tuple[str, str, str]]:
    return [(str(b.kind), b.path, b.detail) for b in diff.breaking]


def _added(diff: ApiDiff) -> list[tuple[str, str, str]]:
    return [(a.kind, a.path, a.detail) for a in diff.additions]


def test_the_kinds_are_griffes_in_kebab_case() -> None:
    assert {str(kind) for kind in BreakageKind} == {
        "object-removed",
        "object-changed-kind",
        "parameter-removed",
        "parameter-added-required",
        "parameter-moved",
        "parameter-changed-kind",
        "parameter-changed-default",
        "parameter-changed-required",
        "return-changed-type",
        "attribute-changed-value",
        "class-removed-base",
    }


def test_removed_public_objects_break_with_where_they_were(tmp_path: Path) -> None:
    old = """\
        def keep(): ...
        def gone(): ...
        class Parser:
            def parse(self): ...
            def reset(self): ...
        class Old: ...
        """
    new = """\
        def keep(): ...
        class Parser:
            def parse(self): ...
        """
    diff = _diff(tmp_path, old, new)
    assert _breaks(diff) == [
        ("object-removed", "pkg.Old", "class 'Old' was removed"),
        ("object-removed", "pkg.Parser.reset", "method 'reset' was removed"),
        ("object-removed", "pkg.gone", "function 'gone' was removed"),
    ]
    assert diff.breaking[1].location == Location("pkg.py", 5)  # in the old version
    assert suggested_bump(diff) is BumpKind.MAJOR


def test_private_names_never_count(tmp_path: Path) -> None:
    old = """\
        import json
        from os import path
        def _helper(a): ...
        class _Hidden:
            def run(self, a): ...
        class Public:
            def _internal(self, a): ...
            def __secret(self): ...
        """
    new = """\
        def _helper(b, c): ...
        class _Hidden: ...
        class Public: ...
        """
    assert _diff(tmp_path, old, new) == ApiDiff()


def test_dunder_methods_are_public(tmp_path: Path) -> None:
    old = """\
        class Public:
            def __call__(self, x): ...
        """
    diff = _diff(tmp_path, old, "class Public: ...\n")
    assert _breaks(diff) == [
        ("object-removed", "pkg.Public.__call__", "method '__call__' was removed")
    ]


def test_all_decides_what_a_module_exports(tmp_path: Path) -> None:
    old = """\
        __all__ = ["shown"]
        def shown(): ...
        def not_exported(a): ...
        def _exported_anyway(): ...
        """
    new = """\
        __all__ = ["shown", "_exported_anyway"]
        def shown(): ...
        def _exported_anyway(): ...
        """
    diff = _diff(tmp_path, old, new)
    assert diff.breaking == ()
    assert _added(diff) == [
        ("object-added", "pkg._exported_anyway", "function '_exported_anyway' was added")
    ]


def test_empty_all_counts_as_none_and_submodules_ignore_all(tmp_path: Path) -> None:
    """griffe's rules: an empty ``__all__`` exports nothing explicitly, so names fall back to
    the underscore rule; a submodule is public whatever its package's ``__all__`` says."""
    old = {
        "pkg/__init__.py": "__all__ = []\ndef helper(): ...\n",
        "pkg/tools.py": "def run(): ...\n",
    }
    new = {"pkg/__init__.py": "__all__ = []\n"}
    assert _breaks(_diff(tmp_path, old, new)) == [
        ("object-removed", "pkg.helper", "function 'helper' was removed"),
        ("object-removed", "pkg.tools", "module 'tools' was removed"),
    ]


def test_changed_kind(tmp_path: Path) -> None:
    old = "def Token(): ...\nLIMIT = 3\n"
    new = "class Token: ...\ndef LIMIT(): ...\n"
    diff = _diff(tmp_path, old, new)
    assert _breaks(diff) == [
        ("object-changed-kind", "pkg.LIMIT", "'LIMIT' changed from attribute to function"),
        ("object-changed-kind", "pkg.Token", "'Token' changed from function to class"),
    ]
    assert (diff.breaking[1].old, diff.breaking[1].new) == ("function", "class")


def test_a_class_with_fewer_bases_breaks_a_renamed_base_does_not(tmp_path: Path) -> None:
    old = """\
        class A: ...
        class B: ...
        class Fewer(A, B): ...
        class Renamed(A): ...
        """
    new = """\
        class A: ...
        class B: ...
        class Fewer(A): ...
        class Renamed(B): ...
        """
    diff = _diff(tmp_path, old, new)
    assert _breaks(diff) == [("class-removed-base", "pkg.Fewer", "base class 'B' removed")]
    assert (diff.breaking[0].old, diff.breaking[0].new) == ("A, B", "A")


@pytest.mark.parametrize(
    ("old", "new", "removed"),
    [
        ("def f(a, *, key=1): ...", "def f(a, **kwargs): ...", False),  # **kwargs takes it
        ("def f(a, b, /): ...", "def f(a, *args): ...", False),  # *args takes it
        ("def f(a, b): ...", "def f(a, *args, **kwargs): ...", False),  # both take it
        ("def f(a, b): ...", "def f(a, *args): ...", True),  # no longer by keyword
        ("def f(a, b): ...", "def f(a, **kwargs): ...", True),  # no longer by position
        ("def f(a, *, key=1): ...", "def f(a, *args): ...", True),
        ("def f(a, b, /): ...", "def f(a, **kwargs): ...", True),
        ("def f(a, *args): ...", "def f(a): ...", True),
        ("def f(a, timeout=3): ...", "def f(a): ...", True),
    ],
)
def test_removed_parameter_unless_variadics_absorb_it(
    tmp_path: Path, old: str, new: str, removed: bool
) -> None:
    breaks = [(kind, path) for kind, path, _ in _breaks(_diff(tmp_path, old, new))]
    assert (("parameter-removed", "pkg.f") in breaks) is removed


def test_removed_parameter_is_named_in_the_detail(tmp_path: Path) -> None:
    diff = _diff(tmp_path, "def get(url, timeout=3): ...\n", "import os\ndef get(url): ...\n")
    assert _breaks(diff) == [("parameter-removed", "pkg.get", "parameter 'timeout' was removed")]
    assert diff.breaking[0].location == Location("pkg.py", 2)  # in the new version


def test_moved_positional_parameters(tmp_path: Path) -> None:
    old = "class C:\n    def m(self, a, b, *, c=1): ...\n"
    new = "class C:\n    def m(self, b, a, *, d=2, c=1): ...\n"
    diff = _diff(tmp_path, old, new)
    assert _breaks(diff) == [
        ("parameter-moved", "pkg.C.m", "parameter 'a' moved from position 1 to 2"),
        ("parameter-moved", "pkg.C.m", "parameter 'b' moved from position 2 to 1"),
    ]
    assert _added(diff) == [
        ("parameter-added-optional", "pkg.C.m", "optional parameter 'd' was added")
    ]


@pytest.mark.parametrize(
    ("old", "new", "breaks"),
    [
        ("def f(a): ...", "def f(*, a): ...", True),
        ("def f(a): ...", "def f(a, /): ...", True),
        ("def f(a, /): ...", "def f(*, a): ...", True),
        ("def f(*, a): ...", "def f(a, /): ...", True),
        ("def f(a, /): ...", "def f(a): ...", False),  # widened
        ("def f(*, a): ...", "def f(a): ...", False),  # widened
    ],
)
def test_changed_parameter_kind(tmp_path: Path, old: str, new: str, breaks: bool) -> None:
    kinds = [kind for kind, _, _ in _breaks(_diff(tmp_path, old, new))]
    assert ("parameter-changed-kind" in kinds) is breaks


def test_changed_kind_names_both_kinds(tmp_path: Path) -> None:
    diff = _diff(tmp_path, "def f(a): ...\n", "def f(*, a): ...\n")
    assert _breaks(diff) == [
        (
            "parameter-changed-kind",
            "pkg.f",
            "parameter 'a' changed kind from positional or keyword to keyword-only",
        )
    ]


def test_changed_default(tmp_path: Path) -> None:
    diff = _diff(tmp_path, "def open_(path, mode='r'): ...\n", "def open_(path, mode='rb'): ...\n")
    assert _breaks(diff) == [
        (
            "parameter-changed-default",
            "pkg.open_",
            "parameter 'mode' default changed from 'r' to 'rb'",
        )
    ]
    assert (diff.breaking[0].old, diff.breaking[0].new) == ("'r'", "'rb'")


def test_default_compared_as_source_text(tmp_path: Path) -> None:
    diff = _diff(tmp_path, "def f(a=(1,2)): ...\n", "def f(a = ( 1 , 2 )): ...\n")
    assert diff == ApiDiff()


def test_optional_parameter_made_required(tmp_path: Path) -> None:
    diff = _diff(tmp_path, "def f(a, b=1): ...\n", "def f(a, b): ...\n")
    assert _breaks(diff) == [
        ("parameter-changed-required", "pkg.f", "parameter 'b' is now required")
    ]


def test_added_parameters_break_only_when_required(tmp_path: Path) -> None:
    old = "def f(a): ...\n"
    new = "def f(a, b, c=None, *args, d, e=1, **kwargs): ...\n"
    diff = _diff(tmp_path, old, new)
    assert _breaks(diff) == [
        ("parameter-added-required", "pkg.f", "required parameter 'b' was added"),
        ("parameter-added-required", "pkg.f", "required parameter 'd' was added"),
    ]
    assert _added(diff) == [
        ("parameter-added-optional", "pkg.f", "optional parameter 'c' was added"),
        ("parameter-added-optional", "pkg.f", "optional parameter '*args' was added"),
        ("parameter-added-optional", "pkg.f", "optional parameter 'e' was added"),
        ("parameter-added-optional", "pkg.f", "optional parameter '**kwargs' was added"),
    ]


def test_return_annotation_breaks_only_when_removed(tmp_path: Path) -> None:
    """griffe 2.x compares no return types yet: only a vanished annotation counts."""
    old = """\
        def removed() -> int: ...
        def changed() -> int: ...
        def gained(): ...
        def from_none() -> None: ...
        """
    new = """\
        def removed(): ...
        def changed() -> str: ...
        def gained() -> int: ...
        def from_none() -> int: ...
        """
    diff = _diff(tmp_path, old, new)
    assert _breaks(diff) == [
        ("return-changed-type", "pkg.removed", "return annotation 'int' was removed")
    ]


def test_attribute_values_are_not_compared(tmp_path: Path) -> None:
    """griffe 2.x reports no ``attribute-changed-value``: a constant such as ``__version__``
    changes every release."""
    old = "__version__ = '1.0'\nTIMEOUT = 5\nclass C:\n    LIMIT = 1\n"
    new = "__version__ = '2.0'\nTIMEOUT = 10\nclass C:\n    LIMIT = 2\n"
    assert _diff(tmp_path, old, new) == ApiDiff()


def test_definition_moved_between_private_modules_breaks_nothing(tmp_path: Path) -> None:
    definitions = "def load(fp, *, strict=True): ...\nclass Reader:\n    def read(self): ...\n"
    old = {
        "pkg/__init__.py": "from ._old import load, Reader\n__all__ = ['load', 'Reader']\n",
        "pkg/_old.py": definitions,
    }
    new = {
        "pkg/__init__.py": "from ._new import load, Reader\n__all__ = ['load', 'Reader']\n",
        "pkg/_new.py": definitions,
    }
    assert _diff(tmp_path, old, new) == ApiDiff()


def test_a_reexported_object_is_compared_by_what_it_names(tmp_path: Path) -> None:
    """The path is the changed object's own (griffe's ``obj.path``), and an object reached
    under two public names is reported once."""
    old = {
        "pkg/__init__.py": "from ._impl import load, load as read\n__all__ = ['load', 'read']\n",
        "pkg/_impl.py": "def load(fp, strict=True): ...\n",
    }
    new = {
        "pkg/__init__.py": "from ._impl import load, load as read\n__all__ = ['load', 'read']\n",
        "pkg/_impl.py": "def load(fp): ...\n",
    }
    assert _breaks(_diff(tmp_path, old, new)) == [
        ("parameter-removed", "pkg._impl.load", "parameter 'strict' was removed")
    ]


def test_a_definition_replaced_by_a_reexport_is_still_compared(tmp_path: Path) -> None:
    """griffe skips this pair by accident (tests/test_analysis_griffe.py shows it); a
    caller of ``pkg.load`` is broken all the same."""
    old = {"pkg/__init__.py": "__all__ = ['load']\ndef load(fp, strict=True): ...\n"}
    new = {
        "pkg/__init__.py": "__all__ = ['load']\nfrom ._impl import load\n",
        "pkg/_impl.py": "def load(fp): ...\n",
    }
    assert _breaks(_diff(tmp_path, old, new)) == [
        ("parameter-removed", "pkg._impl.load", "parameter 'strict' was removed")
    ]


def test_names_from_outside_the_version_are_not_looked_into(tmp_path: Path) -> None:
    old = "__all__ = ['loads', 'dumps']\nfrom json import loads, dumps\n"
    new = "__all__ = ['loads']\nfrom pickle import loads\n"
    assert _breaks(_diff(tmp_path, old, new)) == [
        ("object-removed", "pkg.dumps", "name 'dumps' was removed")
    ]


def test_inherited_members_count_as_the_class_own(tmp_path: Path) -> None:
    old = """\
        class Base:
            def run(self, a, b): ...
            def stop(self): ...
        class Loader(Base): ...
        class Keeper(Base): ...
        """
    new = """\
        class Base:
            def run(self, a): ...
        class Loader: ...
        class Keeper(Base):
            def stop(self): ...
        """
    assert _breaks(_diff(tmp_path, old, new)) == [
        ("parameter-removed", "pkg.Base.run", "parameter 'b' was removed"),
        ("object-removed", "pkg.Base.stop", "method 'stop' was removed"),
        ("class-removed-base", "pkg.Loader", "base class 'Base' removed"),
        ("object-removed", "pkg.Loader.run", "method 'run' was removed"),
        ("object-removed", "pkg.Loader.stop", "method 'stop' was removed"),
    ]


def test_inherited_members_follow_pythons_mro(tmp_path: Path) -> None:
    """``D(B, C)`` with ``B(A)`` and ``C(A)``: ``D.m`` is ``C.m`` (C3 order D, B, C, A); once
    ``C.m`` is gone, ``D.m`` is ``A.m``, which needs an argument."""
    old = """\
        __all__ = ["D"]
        class A:
            def m(self, x): ...
        class B(A): ...
        class C(A):
            def m(self): ...
        class D(B, C): ...
        """
    new = old.replace("class C(A):\n            def m(self): ...", "class C(A): ...")
    assert _breaks(_diff(tmp_path, old, new)) == [
        ("parameter-added-required", "pkg.A.m", "required parameter 'x' was added")
    ]


def test_bases_resolve_through_imports_and_modules(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "from . import _base\nfrom ._base import Mixin\n"
        "class Job(_base.Base, Mixin): ...\n",
        "pkg/_base.py": """\
            class Base:
                def run(self, a): ...
            class Mixin:
                def tag(self): ...
            """,
    }
    changed = {
        **files,
        "pkg/_base.py": "class Base:\n    def run(self): ...\nclass Mixin: ...\n",
    }
    assert _breaks(_diff(tmp_path, files, changed)) == [
        ("object-removed", "pkg.Job.tag", "method 'tag' was removed"),
        ("parameter-removed", "pkg._base.Base.run", "parameter 'a' was removed"),
    ]


def test_an_inheritance_cycle_inherits_nothing(tmp_path: Path) -> None:
    source = "class A(B):\n    def a(self): ...\nclass B(A):\n    def b(self): ...\n"
    assert _diff(tmp_path, source, source) == ApiDiff()


def test_additions_list_new_public_objects_once(tmp_path: Path) -> None:
    old = "class Parser:\n    def parse(self): ...\n"
    new = """\
        import json
        class Parser:
            def parse(self): ...
            def reset(self): ...
            def _cache(self): ...
        class Writer:
            def write(self): ...
        def dump(): ...
        def _private(): ...
        """
    diff = _diff(tmp_path, old, new)
    assert diff.breaking == ()
    assert _added(diff) == [
        ("object-added", "pkg.Parser.reset", "method 'reset' was added"),
        ("object-added", "pkg.Writer", "class 'Writer' was added"),
        ("object-added", "pkg.dump", "function 'dump' was added"),
    ]
    assert suggested_bump(diff) is BumpKind.MINOR


def test_results_are_sorted_by_path_then_kind(tmp_path: Path) -> None:
    old = """\
        def z(a, b=1): ...
        def a(x): ...
        class M:
            def f(self, a): ...
        """
    new = """\
        def z(b): ...
        class M:
            def f(self): ...
        """
    diff = _diff(tmp_path, old, new)
    keys = [(b.path, str(b.kind)) for b in diff.breaking]
    assert keys == sorted(keys)
    assert keys[0] == ("pkg.M.f", "parameter-removed")
    assert diff == _diff(tmp_path / "again", old, new)


def test_json_shape(tmp_path: Path) -> None:
    diff = _diff(tmp_path, "def f(a): ...\n", "def f(a, b, c=1): ...\ndef g(): ...\n")
    shape = json.loads(json.dumps(diff.to_dict()))
    assert shape == {
        "breaking": [
            {
                "kind": "parameter-added-required",
                "path": "pkg.f",
                "detail": "required parameter 'b' was added",
            }
        ],
        "additions": [
            {
                "kind": "parameter-added-optional",
                "path": "pkg.f",
                "detail": "optional parameter 'c' was added",
            },
            {"kind": "object-added", "path": "pkg.g", "detail": "function 'g' was added"},
        ],
    }


def test_no_change_suggests_a_patch(tmp_path: Path) -> None:
    source = "def f(a, b=1): ...\n"
    diff = _diff(tmp_path, source, source)
    assert diff == ApiDiff()
    assert suggested_bump(diff) is BumpKind.PATCH
    assert bump_finding(diff, BumpKind.PATCH) is None


_BREAK = ApiDiff(
    breaking=(Breakage(BreakageKind.OBJECT_REMOVED, "pkg.f", "function 'f' was removed"),)
)
_ADD = ApiDiff(additions=(Addition("object-added", "pkg.g", "function 'g' was added"),))


@pytest.mark.parametrize(
    ("diff", "declared", "old_version", "understated"),
    [
        (_BREAK, BumpKind.MAJOR, None, False),
        (_BREAK, BumpKind.MINOR, None, True),
        (_BREAK, BumpKind.PATCH, None, True),
        (_BREAK, BumpKind.PRERELEASE, Version("1.0.0"), True),  # 1.0.0 -> 1.0.0.post1
        (_BREAK, BumpKind.MINOR, Version("0.3.1"), False),  # 0.x: minor may break
        (_BREAK, BumpKind.PATCH, Version("0.3.1"), True),
        (_BREAK, BumpKind.PRERELEASE, Version("2.0.0rc1"), False),  # rc1 -> 2.0.0
        (_ADD, BumpKind.MAJOR, None, False),
        (_ADD, BumpKind.MINOR, None, False),
        (_ADD, BumpKind.PATCH, None, True),
        (_ADD, BumpKind.PATCH, Version("0.3.1"), True),
        (ApiDiff(), BumpKind.PATCH, None, False),
        (ApiDiff(), BumpKind.NONE, None, False),
    ],
)
def test_bump_finding(
    diff: ApiDiff, declared: BumpKind, old_version: Version | None, understated: bool
) -> None:
    finding = bump_finding(diff, declared, old_version=old_version)
    assert (finding is not None) is understated


def test_bump_finding_says_what_was_declared_and_what_is_needed() -> None:
    assert bump_finding(_BREAK, BumpKind.MINOR) == (
        "understated bump: declared minor, the API change needs a major bump: "
        "1 breaking change (first: object-removed pkg.f: function 'f' was removed)"
    )
    two = ApiDiff(additions=_ADD.additions * 2)
    assert bump_finding(two, BumpKind.PATCH) == (
        "understated bump: declared patch, the API change needs a minor bump: "
        "2 additions (first: object-added pkg.g: function 'g' was added)"
    )
    assert "a minor bump at least (0.x)" in (
        bump_finding(_BREAK, BumpKind.PATCH, old_version=Version("0.2.0")) or ""
    )
