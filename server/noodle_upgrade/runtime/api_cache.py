"""Each version's public API, extracted once per runtime: a version folder does not
change (its ``sha256`` says so when declared), so neither does its API. Extraction reads
the folder's files with ``ast``; nothing is imported."""

from __future__ import annotations

import threading

from noodle_upgrade.analysis.api import Api
from noodle_upgrade.analysis.diff import ApiDiff, diff_api
from noodle_upgrade.analysis.extract import ParsedFiles, extract_api
from noodle_upgrade.errors import NoodleError
from noodle_upgrade.models import ComponentDescriptor


class ApiCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._apis: dict[tuple[str, str], Api | NoodleError] = {}
        self._diffs: dict[tuple[tuple[str, str], tuple[str, str]], ApiDiff] = {}
        self._parsed = ParsedFiles()

    def api(self, descriptor: ComponentDescriptor) -> Api:
        """The API of one version; an analysis error (a syntax error, a missing entry
        module) raises, every time it is asked, without parsing again."""
        key = self._key(descriptor)
        with self._lock:
            known = self._apis.get(key)
        if known is None:
            try:
                known = extract_api(
                    descriptor.folder,
                    descriptor.entry,
                    component=descriptor.name,
                    version=str(descriptor.version),
                    parsed=self._parsed,
                )
            except NoodleError as exc:
                known = exc
            with self._lock:
                self._apis[key] = known
        if isinstance(known, NoodleError):
            raise known
        return known

    def diff(self, old: ComponentDescriptor, new: ComponentDescriptor) -> ApiDiff:
        """Kept too: a proposal is assessed, described and then applied, and each asks."""
        key = (self._key(old), self._key(new))
        with self._lock:
            known = self._diffs.get(key)
        if known is None:
            known = diff_api(self.api(old), self.api(new))
            with self._lock:
                self._diffs[key] = known
        return known

    @staticmethod
    def _key(descriptor: ComponentDescriptor) -> tuple[str, str]:
        return (str(descriptor.folder), str(descriptor.version))

    def diff_or_none(self, old: ComponentDescriptor, new: ComponentDescriptor) -> ApiDiff | None:
        """For judging a proposal: a version the analysis cannot read is judged without
        its API changes (its load will report what is wrong with it)."""
        try:
            return self.diff(old, new)
        except NoodleError:
            return None
