from django.urls import path

from actions_app import views

app_name = "actions"

urlpatterns = [
    path("", views.action_list, name="list"),
    path("<slug:action_slug>/", views.action_detail, name="detail"),
]
