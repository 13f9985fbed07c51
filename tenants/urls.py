from django.urls import path

from tenants import views

app_name = "settings"

urlpatterns = [
    path("", views.settings_page, name="index"),
    path("tokens/", views.token_create, name="token_create"),
    path("tokens/<slug:token_key_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("invitations/", views.invitation_create, name="invitation_create"),
    path("invitations/<str:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("members/<str:member_username>/role/", views.member_change_role, name="member_role"),
    path("members/<str:member_username>/remove/", views.member_remove, name="member_remove"),
]
