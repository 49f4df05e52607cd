"""Releases tagged in a git repository become version folders in the store ([sources.git]).

Real git repositories in ``tmp_path``, real ``git`` subprocesses, a real polling thread.
"""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from helpers.git_repo import Repo
from helpers.project import greeter_source
from noodle_upgrade.engine.git_tags import (
    GitSource,
    TaggedRelease,
    TagPattern,
    check_path_pattern,
    new_releases,
    tagged_releases,
)
from noodle_upgrade.engine.manifest import load_project, scan_store
from noodle_upgrade.errors import ConfigError, ValidationError
from noodle_upgrade.runtime.git_source import GitTagSource, extract_archive
from noodle_upgrade.scaffold import write_component, write_project


class Recorder:
    """The runtime's side of the callbacks: what was imported, what went wrong."""

    def __init__(self) -> None:
        self.imports: list[tuple[str, str, str]] = []
        self.problems: list[str] = []
        self.imported = threading.Event()
        self.reported = threading.Event()

    def on_import(self, component: str, version: str, tag: str) -> None:
        self.imports.append((component, version, tag))
        self.imported.set()

    def on_problem(self, message: str) -> None:
        self.problems.append(message)
        self.reported.set()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The project root; the repository is its sibling ``../components-repo``."""
    return write_project(tmp_path / "project", {"greeter": ">=1.0"})


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "components-repo")


def source_for(
    root: Path,
    recorder: Recorder,
    repo: str = "../components-repo",
    components: Iterable[str] = ("greeter",),
    **settings: Any,
) -> GitTagSource:
    return GitTagSource(
        GitSource(repo, **settings),
        root,
        root / "components",
        lambda: components,
        recorder.on_import,
        recorder.on_problem,
    )


def versions_in(store: Path, name: str = "greeter") -> list[str]:
    found, problems = scan_store(store)
    assert problems == []
    return [str(descriptor.version) for descriptor in found.get(name, [])]


# ---------------------------------------------------------------------------- [sources.git]


def test_sources_git_gets_its_defaults(tmp_path: Path) -> None:
    write_project(tmp_path, {}, extra='\n[sources.git]\nrepo = "../components-repo"\n')

    config = load_project(tmp_path)

    assert config.git_source == GitSource(
        repo="../components-repo", tags="{component}-v{version}", path="{component}", interval_s=60
    )
    assert config.warnings == ()


def test_sources_git_reads_every_key(tmp_path: Path) -> None:
    extra = """
[sources.git]
repo = "/srv/releases.git"
tags = "release/{component}/{version}"
path = "components/{component}"
interval_s = 2.5
"""
    write_project(tmp_path, {}, extra=extra)

    assert load_project(tmp_path).git_source == GitSource(
        "/srv/releases.git", "release/{component}/{version}", "components/{component}", 2.5
    )


def test_no_sources_section_means_no_git_source(tmp_path: Path) -> None:
    write_project(tmp_path, {"greeter": ">=1.0"})

    assert load_project(tmp_path).git_source is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('tags = "{component}"', "must hold {component} and {version} once each"),
        ('tags = "{version}-{version}"', "must hold {component} and {version} once each"),
        ('tags = "{name}-v{version}"', "unknown placeholder {name}"),
        ('tags = "{component}-v{version"', "unbalanced brace"),
        ("tags = 5", "expected a string, got 5"),
        ('path = "../elsewhere"', "must be a folder inside the repository"),
        ('path = "/srv/components"', "must be a folder inside the repository"),
        ('path = "{version}"', "unknown placeholder {version} (allowed: {component})"),
        ("interval_s = 0", "expected a number of seconds > 0, got 0"),
        ("interval_s = -5", "expected a number of seconds > 0, got -5"),
        ('interval_s = "60"', "expected a number of seconds > 0, got '60'"),
        ("interval_s = nan", "expected a number of seconds > 0, got nan"),
    ],
)
def test_invalid_git_source_values_name_file_line_and_field(
    tmp_path: Path, line: str, expected: str
) -> None:
    key = line.split(" ", 1)[0]
    (tmp_path / "noodle.toml").write_text(f'[noodle]\n\n[sources.git]\nrepo = "../r"\n{line}\n')

    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path)

    message = str(caught.value)
    assert message.startswith(f"{tmp_path}/noodle.toml:5: field '{key}' in [sources.git]: ")
    assert expected in message


def test_git_source_needs_a_repo(tmp_path: Path) -> None:
    (tmp_path / "noodle.toml").write_text('[components]\n\n[sources.git]\ntags = "{component}"\n')

    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path)

    assert str(caught.value).startswith(
        f"{tmp_path}/noodle.toml:3: missing required field 'repo' in [sources.git]"
    )


def test_sources_git_must_be_a_table(tmp_path: Path) -> None:
    (tmp_path / "noodle.toml").write_text('[sources]\ngit = "../components-repo"\n')

    with pytest.raises(ConfigError, match=r"noodle\.toml:2: \[sources\.git\] must be a table"):
        load_project(tmp_path)


def test_unknown_git_keys_and_sources_are_warnings_with_lines(tmp_path: Path) -> None:
    text = '[sources.git]\nrepo = "../r"\nbranch = "main"\n\n[sources.svn]\nurl = "x"\n'
    (tmp_path / "noodle.toml").write_text(text)

    config = load_project(tmp_path)

    path = tmp_path / "noodle.toml"
    assert config.git_source == GitSource("../r")
    assert config.warnings == (
        f"{path}:5: unknown source [sources.svn] (ignored; allowed: [sources.git])",
        f"{path}:3: unknown key 'branch' in [sources.git] (allowed: repo, tags, path, interval_s)",
    )


# ---------------------------------------------------------------------------- tag matching


def releases(pattern: str, tags: list[str], components: list[str]) -> list[tuple[str, str, str]]:
    found = tagged_releases(TagPattern(pattern), tags, components)
    return [(release.component, str(release.version), release.tag) for release in found]


def test_tags_of_listed_components_with_pep440_versions_are_releases() -> None:
    tags = [
        "greeter-v1.0.0",
        "greeter-v1.1.0rc1",
        "greeter-vnext",  # not a version
        "lexer-v2.0",
        "other-v1.0.0",  # not listed
        "v3.0.0",
        "greeter-1.2.0",  # no "v"
    ]

    assert releases("{component}-v{version}", tags, ["greeter", "lexer"]) == [
        ("greeter", "1.0.0", "greeter-v1.0.0"),
        ("greeter", "1.1.0rc1", "greeter-v1.1.0rc1"),
        ("lexer", "2.0", "lexer-v2.0"),
    ]


def test_pattern_text_is_literal_and_may_put_the_version_first() -> None:
    pattern = "release/{version}.{component}"
    tags = ["release/1.0.0.greeter", "release/1.0.0Xgreeter", "release/2.0.greeter/x"]

    assert releases(pattern, tags, ["greeter"]) == [("greeter", "1.0.0", "release/1.0.0.greeter")]


def test_the_longer_component_name_wins_when_both_would_match() -> None:
    # "1-2" is a valid PEP 440 version (1.post2), so "a" would match too.
    assert releases("{component}-{version}", ["a-1-2", "a-3"], ["a", "a-1"]) == [
        ("a-1", "2", "a-1-2"),
        ("a", "3", "a-3"),
    ]


def test_new_releases_skip_stored_versions_and_keep_one_tag_per_version() -> None:
    found = [
        TaggedRelease("greeter", Version(text), f"greeter-v{text}")
        for text in ["1.2.0", "1.0.0", "1.1.0", "1.1"]
    ]

    new = new_releases(found, {"greeter": {Version("1.0")}})

    assert [(str(release.version), release.tag) for release in new] == [
        ("1.1.0", "greeter-v1.1.0"),
        ("1.2.0", "greeter-v1.2.0"),
    ]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("v{version}", "must hold {component} and {version} once each"),
        ("{component}", "must hold {component} and {version} once each"),
        ("{component}-{component}-{version}", "must hold {component} and {version} once each"),
        ("{component}-{tag}-{version}", "unknown placeholder {tag}"),
        ("{component}}-{version}", "unbalanced brace"),
    ],
)
def test_tag_patterns_need_both_placeholders_once(pattern: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        TagPattern(pattern)


def test_path_pattern_names_a_folder_per_component() -> None:
    source = GitSource("repo", path=check_path_pattern("components/{component}"))

    assert source.folder_in_repo("greeter") == "components/greeter"
    assert check_path_pattern(".") == "."
    for bad in ["", "a/../../b", "/abs", "a\\b"]:
        with pytest.raises(ConfigError, match="must be a folder inside the repository"):
            check_path_pattern(bad)


# ---------------------------------------------------------------------------- polling


def test_poll_imports_exactly_the_new_tagged_versions(root: Path, repo: Repo) -> None:
    write_component(root, "greeter", "1.0.0", greeter_source("1.0.0"))
    for version in ["1.0.0", "1.1.0", "1.2.0"]:
        repo.release("greeter", version)
    for other in ["greeter-vnext", "other-v1.0.0", "v9.0.0"]:
        repo.git("tag", other)
    (root / "noodle.toml").write_text(
        (root / "noodle.toml").read_text() + '\n[sources.git]\nrepo = "../components-repo"\n'
    )
    config = load_project(root)
    assert config.git_source is not None
    recorder = Recorder()
    source = GitTagSource(
        config.git_source,
        config.root,
        config.store_dir,
        lambda: config.components,
        recorder.on_import,
        recorder.on_problem,
    )

    imported = source.poll()

    assert imported == [("greeter", "1.1.0"), ("greeter", "1.2.0")]
    assert recorder.imports == [
        ("greeter", "1.1.0", "greeter-v1.1.0"),
        ("greeter", "1.2.0", "greeter-v1.2.0"),
    ]
    assert recorder.problems == []
    assert versions_in(config.store_dir) == ["1.0.0", "1.1.0", "1.2.0"]
    # Each folder holds what was tagged, not what the branch holds now.
    assert "'1.1.0'" in (config.store_dir / "greeter" / "1.1.0" / "greeter.py").read_text()
    assert sorted(entry.name for entry in config.store_dir.iterdir()) == ["greeter"]


def test_a_second_poll_imports_nothing_until_a_new_tag(root: Path, repo: Repo) -> None:
    repo.release("greeter", "1.0.0")
    recorder = Recorder()
    source = source_for(root, recorder)
    assert source.poll() == [("greeter", "1.0.0")]

    assert source.poll() == []
    assert len(recorder.imports) == 1

    repo.release("greeter", "1.0.1")
    assert source.poll() == [("greeter", "1.0.1")]
    assert versions_in(root / "components") == ["1.0.0", "1.0.1"]


def test_a_version_already_in_the_store_is_never_touched(root: Path, repo: Repo) -> None:
    mine = write_component(root, "greeter", "1.1", greeter_source("mine"))
    repo.release("greeter", "1.1.0")
    recorder = Recorder()

    assert source_for(root, recorder).poll() == []

    assert "'mine'" in (mine / "greeter.py").read_text()
    assert not (root / "components" / "greeter" / "1.1.0").exists()
    assert recorder.problems == []


def test_custom_tag_pattern_and_path(root: Path, repo: Repo) -> None:
    repo.release("greeter", "2.0.0", folder="components/greeter", tag="release/greeter/2.0.0")
    recorder = Recorder()
    source = source_for(
        root, recorder, tags="release/{component}/{version}", path="components/{component}"
    )

    assert source.poll() == [("greeter", "2.0.0")]
    assert versions_in(root / "components") == ["2.0.0"]


@pytest.mark.parametrize(
    ("declares", "expected"),
    [
        (("lexer", "1.3.0"), "greeter/component.toml declares lexer 1.3.0"),
        (("greeter", "1.4.0"), "greeter/component.toml declares greeter 1.4.0"),
    ],
)
def test_a_component_toml_that_contradicts_its_tag_is_refused(
    root: Path, repo: Repo, declares: tuple[str, str], expected: str
) -> None:
    repo.release("greeter", "1.3.0", declares=declares)
    recorder = Recorder()

    assert source_for(root, recorder).poll() == []

    assert recorder.imports == []
    [problem] = recorder.problems
    assert "tag 'greeter-v1.3.0'" in problem
    assert expected in problem
    assert "but the tag names greeter 1.3.0; not imported" in problem
    assert list((root / "components").iterdir()) == []  # no version, no .incoming


def test_a_broken_manifest_is_refused_naming_the_file_at_the_tag(root: Path, repo: Repo) -> None:
    repo.release("greeter", "1.3.0", entry="missing")
    recorder = Recorder()

    assert source_for(root, recorder).poll() == []

    [problem] = recorder.problems
    assert "greeter-v1.3.0:greeter/component.toml:4: entry 'missing': no module" in problem
    assert list((root / "components").iterdir()) == []


def test_one_bad_tag_does_not_hold_back_the_others(root: Path, repo: Repo) -> None:
    repo.release("greeter", "1.0.0")
    repo.git("tag", "greeter-v1.5.0", "HEAD~0")  # the 1.0.0 tree under a 1.5.0 tag
    repo.release("greeter", "2.0.0")
    recorder = Recorder()

    assert source_for(root, recorder).poll() == [("greeter", "1.0.0"), ("greeter", "2.0.0")]
    assert len(recorder.problems) == 1
    assert "declares greeter 1.0.0 but the tag names greeter 1.5.0" in recorder.problems[0]


def test_a_tag_without_the_component_folder_is_reported(root: Path, repo: Repo) -> None:
    repo.release("lexer", "1.0.0")
    repo.git("tag", "greeter-v1.0.0")  # a commit without greeter/
    recorder = Recorder()

    assert source_for(root, recorder).poll() == []

    [problem] = recorder.problems
    assert "`git archive --format=tar refs/tags/greeter-v1.0.0 -- greeter` failed" in problem
    assert "greeter" in problem.rsplit("failed:", 1)[1]  # git's own words follow
    assert not (root / "components" / ".incoming").exists()


def test_a_folder_that_is_no_repository_is_a_problem_not_an_exception(
    tmp_path: Path, root: Path
) -> None:
    # A plain folder inside another repository: git must not use the outer one's tags.
    outer = Repo(tmp_path / "outer")
    outer.release("greeter", "1.0.0")
    (outer.root / "plain").mkdir()
    recorder = Recorder()

    assert source_for(root, recorder, repo="../outer/plain").poll() == []

    [problem] = recorder.problems
    assert problem.startswith(f"[sources.git] {outer.root / 'plain'}: `git tag --list` failed: ")
    assert "not a git repository" in problem
    assert list((root / "components").iterdir()) == []


def test_a_missing_repository_folder_is_a_problem(root: Path) -> None:
    recorder = Recorder()

    assert source_for(root, recorder, repo="../nowhere").poll() == []

    [problem] = recorder.problems
    assert "`git tag --list` failed: " in problem
    assert "nowhere" in problem.rsplit("failed:", 1)[1]


def test_git_not_installed_is_a_problem(
    root: Path, repo: Repo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo.release("greeter", "1.0.0")
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    recorder = Recorder()

    assert source_for(root, recorder).poll() == []

    assert recorder.problems == [
        f"[sources.git] {repo.root}: the `git` command is not installed or not on PATH; "
        "install git, or remove [sources.git] from noodle.toml"
    ]


# ---------------------------------------------------------------------------- the thread


def test_the_thread_polls_at_once_and_stop_returns_without_waiting_the_interval(
    root: Path, repo: Repo
) -> None:
    repo.release("greeter", "1.0.0")
    recorder = Recorder()
    source = source_for(root, recorder, interval_s=3600)

    source.start()
    assert recorder.imported.wait(60)  # a bound so a broken thread fails instead of hanging
    source.stop()  # with an hour's interval, this only returns if stop wakes the thread

    assert not source.running
    assert recorder.imports == [("greeter", "1.0.0", "greeter-v1.0.0")]
    assert versions_in(root / "components") == ["1.0.0"]


def test_the_thread_survives_problems_and_reports_a_lasting_one_once(root: Path) -> None:
    polls = threading.Semaphore(0)

    def components() -> list[str]:
        polls.release()
        return ["greeter"]

    recorder = Recorder()
    source = GitTagSource(
        GitSource("../nowhere", interval_s=0.01),
        root,
        root / "components",
        components,
        recorder.on_import,
        recorder.on_problem,
    )

    source.start()
    for _ in range(3):
        assert polls.acquire(timeout=60)
    assert source.running
    source.stop()

    assert len(recorder.problems) == 1
    assert "`git tag --list` failed" in recorder.problems[0]
    assert not source.running


def test_a_callback_that_raises_does_not_end_the_thread(root: Path, repo: Repo) -> None:
    repo.release("greeter", "1.0.0")
    polls = threading.Semaphore(0)

    def components() -> list[str]:
        polls.release()
        return ["greeter"]

    def on_import(component: str, version: str, tag: str) -> None:
        raise RuntimeError("the runtime's own bug")

    source = GitTagSource(
        GitSource("../components-repo", interval_s=0.01),
        root,
        root / "components",
        components,
        on_import,
        Recorder().on_problem,
    )

    source.start()
    for _ in range(2):
        assert polls.acquire(timeout=60)
    assert source.running
    source.stop()
    assert versions_in(root / "components") == ["1.0.0"]


# ---------------------------------------------------------------------------- extraction


def tar_of(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for info, data in members:
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def regular(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), b"print('pwned')\n"


def link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def test_extract_archive_unpacks_a_folder(tmp_path: Path) -> None:
    data = tar_of(
        regular("greeter/greeter.py"), link("greeter/alias.py", "greeter.py", tarfile.SYMTYPE)
    )

    extract_archive(data, tmp_path / "out")

    assert (tmp_path / "out" / "greeter" / "greeter.py").read_bytes() == b"print('pwned')\n"
    assert (tmp_path / "out" / "greeter" / "alias.py").resolve() == (
        tmp_path / "out" / "greeter" / "greeter.py"
    )


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (regular("greeter/../../evil.py"), "a path through '..'"),
        (regular("/tmp/evil.py"), "an absolute path"),
        (link("greeter/up", "../../evil.py", tarfile.SYMTYPE), "a link to '../../evil.py'"),
        (link("greeter/abs", "/etc/passwd", tarfile.SYMTYPE), "a link to '/etc/passwd'"),
        (link("greeter/hard", "../evil.py", tarfile.LNKTYPE), "a link to '../evil.py'"),
        (link("greeter/fifo", "", tarfile.FIFOTYPE), "a special file"),
    ],
)
def test_extract_archive_refuses_members_that_leave_the_folder(
    tmp_path: Path, member: tuple[tarfile.TarInfo, bytes], reason: str
) -> None:
    target = tmp_path / "store" / ".incoming" / "work"
    target.parent.mkdir(parents=True)
    data = tar_of(regular("greeter/greeter.py"), member)

    with pytest.raises(ValidationError) as caught:
        extract_archive(data, target)

    assert f"archive member {member[0].name!r} is {reason}" in str(caught.value)
    assert not target.exists()
    assert sorted(path.name for path in tmp_path.rglob("*")) == [".incoming", "store"]
