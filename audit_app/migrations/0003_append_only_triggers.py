"""On PostgreSQL, the database itself refuses UPDATE, DELETE and TRUNCATE of audit events, so not
even a raw SQL session of the application role can rewrite history. SQLite (development) relies
on the model guard.

One exception: a session that sets `actions_console.test_flush = on` may TRUNCATE, because
the test runner must empty tables between transactional tests. Nothing in the product sets it."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION audit_event_is_append_only() RETURNS trigger AS $$
BEGIN
    -- The test runner empties every table between transactional tests with TRUNCATE; it
    -- announces that in its own session. Rows are never updated or deleted, flag or not.
    IF TG_OP = 'TRUNCATE' AND current_setting('actions_console.test_flush', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_event_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_app_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_is_append_only();

CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON audit_app_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_is_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_app_auditevent;
DROP TRIGGER IF EXISTS audit_event_no_update_delete ON audit_app_auditevent;
DROP FUNCTION IF EXISTS audit_event_is_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit_app", "0002_initial")]

    operations = [migrations.RunPython(forward, backward)]
