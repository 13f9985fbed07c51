from django.apps import AppConfig


class AuditAppConfig(AppConfig):
    name = "audit_app"
    verbose_name = "Audit"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from audit_app.security import record_failed_sign_in, record_refused_tenant, record_rejected_token
        from audit_app.services import record
        from tenants.audit_hooks import AuditWriters, register_audit_writers

        # Django's LoginView offers no other hook for a failed sign-in; the receiver only records.
        user_login_failed.connect(record_failed_sign_in, dispatch_uid="audit_app.security.failed_sign_in")
        # tenants sits below audit_app; its writes and refusals are recorded through these.
        register_audit_writers(
            AuditWriters(record=record, refused_tenant=record_refused_tenant, rejected_token=record_rejected_token)
        )
