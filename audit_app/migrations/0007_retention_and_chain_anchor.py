"""Per-tenant audit retention, and the anchor a retention purge leaves on the chain head."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit_app", "0006_chain_seq_unique"),
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditRetention",
            fields=[
                (
                    "tenant",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        primary_key=True,
                        related_name="audit_retention",
                        serialize=False,
                        to="tenants.tenant",
                    ),
                ),
                ("days", models.PositiveIntegerField(blank=True, default=365, null=True)),
            ],
        ),
        migrations.AddField(
            model_name="auditchainhead",
            name="anchored_hash",
            field=models.CharField(default="", max_length=64),
        ),
        migrations.AddField(
            model_name="auditchainhead",
            name="anchored_seq",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="type",
            field=models.CharField(
                choices=[
                    ("flow.action_attached", "flow.action_attached"),
                    ("flow.action_detached", "flow.action_detached"),
                    ("flow.action_updated", "flow.action_updated"),
                    ("flow.action_executed", "flow.action_executed"),
                    ("flow.action_published", "flow.action_published"),
                    ("action.created", "action.created"),
                    ("action.version_saved", "action.version_saved"),
                    ("api_token.created", "api_token.created"),
                    ("api_token.revoked", "api_token.revoked"),
                    ("member.added", "member.added"),
                    ("member.role_changed", "member.role_changed"),
                    ("member.removed", "member.removed"),
                    ("audit.retention_changed", "audit.retention_changed"),
                    ("audit.purged", "audit.purged"),
                ],
                max_length=40,
            ),
        ),
    ]
