"""Chain the events written before the hash chain existed: per tenant in (occurred_at, id) order,
then record each tenant's chain head. On PostgreSQL the append-only trigger (0003) is switched off
for this one transaction, because giving old rows their seq and hashes is an UPDATE."""

from django.db import migrations

from audit_app.chain import GENESIS_HASH, link


def chain_existing_events(apps, schema_editor):
    AuditEvent = apps.get_model("audit_app", "AuditEvent")
    AuditChainHead = apps.get_model("audit_app", "AuditChainHead")
    postgresql = schema_editor.connection.vendor == "postgresql"
    if postgresql:
        schema_editor.execute("ALTER TABLE audit_app_auditevent DISABLE TRIGGER audit_event_no_update_delete")
    tenant_ids = AuditEvent.objects.values_list("tenant_id", flat=True).distinct().order_by("tenant_id")
    for tenant_id in list(tenant_ids):
        seq, last_hash = 0, GENESIS_HASH
        events = AuditEvent.objects.filter(tenant_id=tenant_id).order_by("occurred_at", "id")
        for event in events.iterator(chunk_size=2000):
            seq += 1
            last_hash = link(event, seq, last_hash)
            # Historical models have neither the append-only save() nor its queryset guard.
            AuditEvent.objects.filter(pk=event.pk).update(seq=event.seq, prev_hash=event.prev_hash, hash=event.hash)
        AuditChainHead.objects.update_or_create(tenant_id=tenant_id, defaults={"last_seq": seq, "last_hash": last_hash})
    if postgresql:
        schema_editor.execute("ALTER TABLE audit_app_auditevent ENABLE TRIGGER audit_event_no_update_delete")


class Migration(migrations.Migration):
    dependencies = [("audit_app", "0004_hash_chain")]

    operations = [migrations.RunPython(chain_existing_events, migrations.RunPython.noop)]
