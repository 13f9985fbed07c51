"""Routes under /invitations/<secret>/ (included by config.urls): outside any tenant, since the
person following the link is no member yet."""

from django.urls import path

from tenants import invitation_views

app_name = "invitations"

urlpatterns = [
    path("", invitation_views.invitation_page, name="page"),
    path("accept/", invitation_views.invitation_accept, name="accept"),
    path("sign-up/", invitation_views.invitation_sign_up, name="sign_up"),
]
