"""Outbound HTTP of the webhook-emit and slack-notify templates (contract §4).

`ssrf` decides which URLs and addresses may be contacted, `http_pinned` POSTs to an address that was
checked, `signing` signs bodies for receivers, `outbox` queues and delivers, `worker` runs deliveries
in the background.
"""
