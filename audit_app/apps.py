from django.apps import AppConfig


class AuditAppConfig(AppConfig):
    name = "audit_app"
    verbose_name = "Audit"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from audit_app.security import record_failed_sign_in

        # Django's LoginView offers no other hook for a failed sign-in; the receiver only records.
        user_login_failed.connect(record_failed_sign_in, dispatch_uid="audit_app.security.failed_sign_in")
