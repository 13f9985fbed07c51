from django.urls import path

from flows_app import delete_views, editor_views, replace_views, revision_views, runs_views, views

app_name = "flows"

urlpatterns = [
    path("", views.flow_list, name="list"),
    # before "<slug:flow_slug>/": "new" is a reserved flow slug
    path("new/", views.flow_new, name="new"),
    path("<slug:flow_slug>/delete/", delete_views.flow_delete, name="delete"),
    path("<slug:flow_slug>/duplicate/", views.flow_duplicate, name="duplicate"),
    path("<slug:flow_slug>/enabled/", views.flow_set_enabled, name="set_enabled"),
    path("<slug:flow_slug>/revisions/", revision_views.revision_list, name="revisions"),
    path("<slug:flow_slug>/revisions/diff/", revision_views.revision_diff, name="revision_diff"),
    path("<slug:flow_slug>/revisions/<int:revision_number>/restore/", replace_views.restore, name="restore"),
    path("<slug:flow_slug>/promote/", replace_views.promote_pick, name="promote_pick"),
    path("<slug:flow_slug>/promote/<slug:target_slug>/", replace_views.promote, name="promote"),
    path("<slug:flow_slug>/runs/", runs_views.flow_runs, name="runs"),
    path(
        "<slug:flow_slug>/transactions/<path:transaction_id>/",
        runs_views.transaction_trace,
        name="transaction",
    ),
    path("<slug:flow_slug>/try/", editor_views.flow_try, name="try"),
    path("<slug:flow_slug>/deliveries/<str:binding_key>/", views.delivery_log, name="deliveries"),
    path("<slug:flow_slug>/", editor_views.flow_editor, name="detail"),
]
