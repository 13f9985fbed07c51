from django.urls import path

from audit_app import retention_views, timeline_views, views

app_name = "audit"

urlpatterns = [
    path("", views.audit_log, name="log"),
    path("export.csv", views.export_csv, name="export_csv"),
    path("export.jsonl", views.export_jsonl, name="export_jsonl"),
    path("timeline/", timeline_views.timeline, name="timeline"),
    path("retention/", retention_views.retention, name="retention"),
    path("<str:event_id>/", views.event_detail, name="detail"),
]
