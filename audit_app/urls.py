from django.urls import path

from audit_app import views

app_name = "audit"

urlpatterns = [
    path("", views.audit_log, name="log"),
]
