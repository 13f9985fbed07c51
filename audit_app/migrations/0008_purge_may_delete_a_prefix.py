"""On PostgreSQL, let the retention purge (and nothing else) DELETE audit events.

The append-only trigger of 0003 now lets a DELETE through when the transaction has run
`SET LOCAL actions_console.audit_purge = on`. Only audit_app.retention.purge_tenant does that, in
the transaction that moves the chain's anchor and records the `audit.purged` event, and it turns
the flag off again right after its DELETE. UPDATE stays refused, flag or not.

Why a session flag is acceptable: PostgreSQL lets any session set a custom parameter, so the flag
is not a privilege boundary against the application role running SQL on purpose (a role that owns
the table could as well drop the trigger). What it does is keep DELETE out of every path the product
has except the purge: an ORM cascade, a bug or a mistaken ad-hoc statement is still refused. The
product exposes no way to set it, and a deliberate deletion outside a purge still shows, because
`verify_audit` checks the chain from the anchor and the anchor against the newest `audit.purged`
event.
"""

from django.db import migrations

WITH_PURGE = """
CREATE OR REPLACE FUNCTION audit_event_is_append_only() RETURNS trigger AS $$
BEGIN
    -- The test runner empties every table between transactional tests with TRUNCATE; it
    -- announces that in its own session.
    IF TG_OP = 'TRUNCATE' AND current_setting('actions_console.test_flush', true) = 'on' THEN
        RETURN NULL;
    END IF;
    -- The retention purge deletes a prefix of a tenant's chain in the transaction that anchors
    -- the rest; it announces that with SET LOCAL, which ends with its transaction.
    IF TG_OP = 'DELETE' AND current_setting('actions_console.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

WITHOUT_PURGE = """
CREATE OR REPLACE FUNCTION audit_event_is_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_setting('actions_console.test_flush', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(WITH_PURGE, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(WITHOUT_PURGE, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit_app", "0007_retention_and_chain_anchor")]

    operations = [migrations.RunPython(forward, backward)]
