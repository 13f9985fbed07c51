"""`Idempotency-Key` for the API's creating POSTs: a client that retries after a lost answer gets
the first answer again (with `Idempotent-Replayed: true`) instead of a second version or action.

The key is claimed by inserting its row in the same transaction as the work itself: a concurrent
retry blocks on the unique constraint until the first commits, then replays its answer; if the
work fails (any error answer), the claim rolls back with it and the key can be used again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from core.api_errors import ApiError
from tenants.models import IDEMPOTENCY_KEY_LIFETIME_HOURS, IdempotentRequest, Tenant

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
KEY_DESCRIPTION = (
    "Any unique string (1–255 visible ASCII characters, e.g. a UUID). A retry with the same key and the "
    f"same body within {IDEMPOTENCY_KEY_LIFETIME_HOURS} h answers the first response again, with "
    f"`{REPLAYED_HEADER}: true`, and creates nothing; the same key with a different body is a 422. "
    "Keys belong to the token's tenant; error answers are not kept, so a failed request may be retried "
    "with its key."
)
_KEY_RE = re.compile(KEY_PATTERN)

Answer = tuple[int, Any]


def request_fingerprint(request: HttpRequest, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()


def _key_problem(message: str) -> ApiError:
    return ApiError(
        422,
        "invalid_idempotency_key",
        f"{IDEMPOTENCY_HEADER}: {message}",
        [{"field": IDEMPOTENCY_HEADER, "message": message}],
    )


def _forget_expired(tenant: Tenant) -> None:
    """Lazy clean-up: keys past their lifetime are forgotten when the tenant next uses one. Runs
    before the claim's transaction where it can, so its row locks are not held through the work
    and two idempotent requests of a tenant do not wait on each other's clean-up."""
    expired_before = timezone.now() - timedelta(hours=IDEMPOTENCY_KEY_LIFETIME_HOURS)
    IdempotentRequest.objects.filter(tenant=tenant, created_at__lt=expired_before).delete()


def _claim(tenant: Tenant, key: str, fingerprint: str) -> IdempotentRequest:
    """The key's row: a new one (status None) that this transaction now holds, or the stored answer."""
    try:
        with transaction.atomic():
            return IdempotentRequest.objects.create(tenant=tenant, key=key, fingerprint=fingerprint)
    except IntegrityError:
        # Another request with this key committed first (we waited for it on the unique index).
        return IdempotentRequest.objects.get(tenant=tenant, key=key)


class _ExactJSONEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder, but datetimes keep their microseconds: Django's cuts them to
    milliseconds, so a replayed 12:00:00.000500 read back as 12:00:00 and was rendered
    "12:00:00Z" where the first answer said "12:00:00.000Z"."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime):
            return o.isoformat()
        return super().default(o)


def answer_once(
    request: HttpRequest, response: HttpResponse, tenant: Tenant, body: Any, produce: Callable[[], Answer]
) -> Answer:
    """Run `produce` (which returns status and body) at most once per `Idempotency-Key`; without the
    header it simply runs. `body` is the validated request body, fingerprinted with method and path."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return produce()
    if not _KEY_RE.match(key):
        raise _key_problem("Use 1–255 visible ASCII characters, such as a UUID.")
    fingerprint = request_fingerprint(request, body)
    _forget_expired(tenant)
    with transaction.atomic():
        claimed = _claim(tenant, key, fingerprint)
        if claimed.fingerprint != fingerprint:
            raise _key_problem("This key was already used for a different request; send a new key for a new request.")
        if claimed.status is not None:
            response[REPLAYED_HEADER] = "true"
            return claimed.status, claimed.body
        status, answer = produce()
        claimed.status = status
        claimed.body = json.loads(json.dumps(answer, cls=_ExactJSONEncoder))
        claimed.save(update_fields=["status", "body"])
    return status, answer
