"""The management API's one error type, raised by every layer and answered by the API assembly."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered in the contract's shape: {"error": {"code", "message", "details"}}."""

    def __init__(
        self, status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else []
        self.headers = headers or {}
