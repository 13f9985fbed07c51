"""The audit pages (namespace `audit`): the log and the timeline read executions and flows beside
the events, so they are assembled here; retention is audit_app's own."""

from django.urls import path

from audit_app import retention_views
from orchestration import audit_views as views
from orchestration import timeline_views

app_name = "audit"

urlpatterns = [
    path("", views.audit_log, name="log"),
    path("export.csv", views.export_csv, name="export_csv"),
    path("export.jsonl", views.export_jsonl, name="export_jsonl"),
    path("timeline/", timeline_views.timeline, name="timeline"),
    path("retention/", retention_views.retention, name="retention"),
    path("<str:event_id>/", views.event_detail, name="detail"),
]
