from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path

from audit_app.security_views import security_log
from config.api import api
from core.middleware import bad_request, not_found, server_error
from tenants import views as tenant_views
from tenants.denied import permission_denied

tenant_patterns: list[URLPattern | URLResolver] = [
    path("", tenant_views.tenant_home, name="tenant_home"),
    path("actions/", include("flows_app.action_urls")),
    path("flows/", include("flows_app.urls")),
    path("audit/", include("orchestration.audit_urls")),
    path("settings/", include("tenants.urls")),
]

urlpatterns = [
    path("", tenant_views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("t/<slug:tenant_slug>/", include(tenant_patterns)),
    # Not under /t/: whoever follows an invitation link is no member of the tenant yet.
    path("invitations/<slug:invitation_token>/", include("tenants.invitation_urls")),
    path("platform/security-log/", security_log, name="security_log"),
    path("api/v1/", api.urls),
]

handler400 = bad_request
handler403 = permission_denied
handler404 = not_found
handler500 = server_error
