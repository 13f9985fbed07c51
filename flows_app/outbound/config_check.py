"""The URLs of a webhook-emit or slack-notify config are checked wherever a config is checked.

flows_app registers `check_outbound_urls` with actions_app's binding-config validator
(`register_template_config_check`, in FlowsAppConfig.ready): the template page's "Check
configuration", the flow editor, the flow save behind the API and rollouts, and the test endpoint
all refuse a URL that `check_url_shape` refuses at send time, with its sentence. The DNS half of the
guard (`resolve_and_check`) stays at send time: a name may point elsewhere by then.
"""

from __future__ import annotations

from typing import Any

from flows_app.outbound.ssrf import UnsafeURL, check_url_shape

# The config field of each template that names where the platform POSTs.
OUTBOUND_URL_FIELDS = {"webhook-emit": "url", "slack-notify": "webhook_url"}


def check_outbound_urls(template: str, config: dict[str, Any]) -> dict[str, list[str]]:
    """Why the template's outbound URL may not be contacted, by its field; {} when it may (or when
    the template posts nowhere, or the value is not text: the schema says so already)."""
    field = OUTBOUND_URL_FIELDS.get(template)
    url = config.get(field) if field else None
    if field is None or not isinstance(url, str):
        return {}
    try:
        check_url_shape(url)
    except UnsafeURL as unsafe:
        return {field: [str(unsafe)]}
    return {}
