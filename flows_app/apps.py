import os

from django.apps import AppConfig
from django.conf import settings


class FlowsAppConfig(AppConfig):
    name = "flows_app"
    verbose_name = "Flows"

    def ready(self) -> None:
        from actions_app.schema_forms import register_template_config_check
        from audit_app.chain import RecordCheck, register_record_check
        from audit_app.reading import register_deferred_settler
        from flows_app.outbound.config_check import check_outbound_urls
        from flows_app.run_records import check_execution_records, settle_for_reading

        # The audit chain covers execution rows through the digests their events carry.
        register_record_check("flow.action_executed", RecordCheck("execution records", check_execution_records))
        # Flow runs are recorded after their answer; audit readers settle them first.
        register_deferred_settler(settle_for_reading)
        # Every place that checks a binding's config refuses the webhook URLs delivery would refuse.
        register_template_config_check(check_outbound_urls)

        # Only in the dev server's serving process (RUN_MAIN), not in its file watcher, nor in
        # management commands and tests.
        if settings.OUTBOX_IN_PROCESS and os.environ.get("RUN_MAIN") == "true":
            from flows_app.outbound.worker import start_in_process_worker

            start_in_process_worker()
