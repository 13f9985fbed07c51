"""The platform security log: failed sign-ins, refused cross-tenant requests, rejected API tokens."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit_app", "0008_purge_may_delete_a_prefix")]

    operations = [
        migrations.CreateModel(
            name="SecurityEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("occurred_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("console.sign_in_failed", "console.sign_in_failed"),
                            ("console.cross_tenant_refused", "console.cross_tenant_refused"),
                            ("api.token_rejected", "api.token_rejected"),
                        ],
                        max_length=40,
                    ),
                ),
                ("username", models.CharField(blank=True, max_length=150)),
                ("user_id", models.PositiveBigIntegerField(blank=True, null=True)),
                ("tenant_slug", models.CharField(blank=True, max_length=80)),
                ("ip", models.GenericIPAddressField(blank=True, null=True)),
                ("user_agent", models.CharField(blank=True, max_length=300)),
                ("request_id", models.CharField(blank=True, max_length=64)),
                ("path", models.CharField(blank=True, max_length=300)),
                ("detail", models.CharField(blank=True, max_length=300)),
            ],
            options={
                "ordering": ["-id"],
                "indexes": [
                    models.Index(fields=["kind", "-id"], name="security_kind_id"),
                    models.Index(fields=["username", "-id"], name="security_username_id"),
                    models.Index(fields=["ip", "-id"], name="security_ip_id"),
                    models.Index(fields=["occurred_at"], name="security_occurred_at"),
                ],
            },
        ),
    ]
