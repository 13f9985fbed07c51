from django.urls import path

from flows_app import views

app_name = "flows"

urlpatterns = [
    path("", views.flow_list, name="list"),
    path("<slug:flow_slug>/", views.flow_detail, name="detail"),
]
