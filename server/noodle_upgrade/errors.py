"""The exceptions users see. Every message says what went wrong, where, and what is allowed.

The names follow the seed documents (``ComponentNotFoundError``, ``HotSwapError``,
``RollbackError``, ``ValidationError``, ``ConfigError``); ``code`` carries the stable
kebab-case name that results, the CLI and the editor use.
"""

from __future__ import annotations


class NoodleError(Exception):
    """Base class of every error NoodleCore Upgrade raises on purpose."""

    code = "noodle-error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigError(NoodleError):
    """Invalid configuration: environment variable, config file or ``noodle.toml``."""

    code = "config-error"


class ValidationError(NoodleError):
    """An upgrade or a manifest fails a validation rule."""

    code = "validation-error"


class ManifestError(ValidationError):
    """A ``component.toml`` or ``noodle.toml`` that cannot be used."""

    code = "manifest-error"


class ComponentNotFoundError(NoodleError):
    """A component, or a version of one, that the store does not hold."""

    code = "unknown-component"


class HotSwapError(NoodleError):
    """A version could not be loaded or switched in."""

    code = "hot-swap-error"


class RollbackError(NoodleError):
    """A rollback that cannot be carried out."""

    code = "rollback-error"


class StoreError(NoodleError):
    """The state store cannot be opened, migrated or written."""

    code = "store-error"
