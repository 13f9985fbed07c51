"""Who is acting on a tenant, and from which request: what every audited write records.

Each request builds one `Acting` (the console's access helper as `access.acting`, the API's
`request_acting`); every write service takes it as the keyword `acting=`, with no default, so a
forgotten actor is a TypeError rather than a write silently made by "platform". Commands and seed
data name themselves with `Acting.platform("seed_demo")`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.http import HttpRequest

from core.http import client_ip
from tenants.models import ApiToken
from tenants.roles import Role


@dataclass(frozen=True)
class Actor:
    """Who did something: an operator, an API token or the platform itself."""

    kind: str
    id: str = ""
    name: str = ""

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        return cls("user", str(user.pk), user.get_username())

    @classmethod
    def for_token(cls, token: ApiToken) -> Actor:
        return cls("token", token.key_id, token.name)

    @classmethod
    def system(cls, name: str = "platform") -> Actor:
        return cls("system", "", name)


@dataclass(frozen=True)
class RequestMeta:
    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest | None) -> RequestMeta:
        if request is None:
            return cls()
        return cls(
            ip=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            request_id=getattr(request, "request_id", ""),
        )


@dataclass(frozen=True)
class Acting:
    """The acting context of one request: the actor the audit trail names, the request it came in
    by, and for an operator their user (authors, creators) and tenant role when the request began
    (what membership changes are checked against). The platform has neither."""

    actor: Actor
    meta: RequestMeta
    user: Any = None
    role: Role | None = None

    @classmethod
    def for_operator(cls, request: HttpRequest, role: Role | None) -> Acting:
        user: Any = request.user
        return cls(Actor.for_user(user), RequestMeta.from_request(request), user=user, role=role)

    @classmethod
    def for_token(cls, request: HttpRequest, token: ApiToken) -> Acting:
        return cls(Actor.for_token(token), RequestMeta.from_request(request))

    @classmethod
    def platform(cls, name: str) -> Acting:
        """The platform itself (a command, seed data, a background process), named."""
        return cls(Actor.system(name), RequestMeta())

    @classmethod
    def for_visitor(cls, request: HttpRequest, name: str) -> Acting:
        """Someone not signed in (e.g. signing up through an invitation), named by what they do,
        with the request they came in by."""
        return cls(Actor.system(name), RequestMeta.from_request(request))

    @classmethod
    def as_operator(cls, user: Any, role: Role | None) -> Acting:
        """An operator acting outside any request (the demo history's operators, tests)."""
        return cls(Actor.for_user(user), RequestMeta(), user=user, role=role)


# When set, writes are importing history (the demo data): rows and events take this time.
_HISTORY_AT: ContextVar[datetime | None] = ContextVar("history_at", default=None)


@contextmanager
def recording_history_at(when: datetime) -> Iterator[None]:
    """Writes inside this block record `when` as their time, for importing history."""
    token = _HISTORY_AT.set(when)
    try:
        yield
    finally:
        _HISTORY_AT.reset(token)


def history_time() -> datetime | None:
    """The time being imported (recording_history_at), None for a write happening now."""
    return _HISTORY_AT.get()


def backdated() -> dict[str, datetime]:
    """`created_at` for a row made while importing history (recording_history_at, the demo data);
    otherwise nothing, so the model's own default applies."""
    when = history_time()
    return {"created_at": when} if when else {}
