"""Every error Optima BI raises, in one hierarchy.

    OptimaError                  code
    ├── InvalidArgumentError     INVALID_ARGUMENT  (names the argument)
    ├── NotFoundError            NOT_FOUND
    ├── ForbiddenError           FORBIDDEN
    ├── UnauthenticatedError     UNAUTHENTICATED
    ├── UnavailableError         UNAVAILABLE
    │   └── StoreError           the ClickHouse store failed or is unreachable
    │       └── StoreLockedError another process holds the embedded store
    ├── MigrationError           INTERNAL  (a migration failed to apply)
    ├── SourceError              UNAVAILABLE (the PostgreSQL source)
    ├── SinkError                INTERNAL  (the CDC sink)
    │   └── ChangeEventError     a change event cannot be decoded (goes to the DLQ)
    └── IdentityError            UNAUTHENTICATED (login, tokens)

Only the tool boundary turns these into tool errors; everything below raises.
"""

from __future__ import annotations

from typing import Any


class OptimaError(Exception):
    """Base of every Optima BI error; carries a stable code and details."""

    code = "INTERNAL"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidArgumentError(OptimaError):
    code = "INVALID_ARGUMENT"

    def __init__(self, message: str, *, argument: str | None = None, **details: Any) -> None:
        if argument is not None:
            details["argument"] = argument
        super().__init__(message, **details)


class NotFoundError(OptimaError):
    code = "NOT_FOUND"


class ForbiddenError(OptimaError):
    code = "FORBIDDEN"


class UnauthenticatedError(OptimaError):
    code = "UNAUTHENTICATED"


class UnavailableError(OptimaError):
    code = "UNAVAILABLE"


class StoreError(UnavailableError):
    """The store failed a query or cannot be reached."""


class StoreLockedError(StoreError):
    """Another process holds the embedded store (chDB allows one per path)."""


class MigrationError(OptimaError):
    code = "INTERNAL"


class SourceError(UnavailableError):
    """The PostgreSQL source cannot be read."""


class SinkError(OptimaError):
    code = "INTERNAL"


class ChangeEventError(SinkError):
    """A change event cannot be decoded; the sink sends it to the dead-letter topic."""


class IdentityError(UnauthenticatedError):
    """Login, token storage or token validation failed."""
