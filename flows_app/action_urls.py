"""The action pages (namespace `actions`). They live here, above actions_app, because most of them
show where an action is attached and how its runs went; version pages come from actions_app."""

from django.urls import path

from actions_app import version_views
from flows_app import action_editor_views as editor_views
from flows_app import action_runs_views as runs_views
from flows_app import action_secrets_views as secrets_views
from flows_app import action_views as views
from flows_app import attach_views, delete_views, replay_views

app_name = "actions"

# Words used by the routes below can never be action slugs (see versioning.RESERVED_SLUGS).
urlpatterns = [
    path("", views.action_list, name="list"),
    path("new/", editor_views.action_new, name="new"),
    path("new/test/", editor_views.action_test, name="test_new"),
    path("schema-preview/", editor_views.schema_preview, name="schema_preview"),
    path("sdk-types/", editor_views.sdk_types, name="sdk_types"),
    path("sample-input/", editor_views.sample_input_for, name="sample_input"),
    path("<slug:action_slug>/", views.action_detail, name="detail"),
    path("<slug:action_slug>/delete/", delete_views.action_delete, name="delete"),
    path("<slug:action_slug>/attach/", attach_views.attach, name="attach"),
    path("<slug:action_slug>/runs/", runs_views.action_runs, name="runs"),
    path("<slug:action_slug>/runs/<str:execution_id>/", runs_views.execution_detail, name="execution"),
    path("<slug:action_slug>/runs/<str:execution_id>/replay/", replay_views.template_replay, name="replay"),
    path("<slug:action_slug>/save/", editor_views.action_save, name="save"),
    path("<slug:action_slug>/test/", editor_views.action_test, name="test"),
    path("<slug:action_slug>/secrets/", secrets_views.secret_set, name="secret_set"),
    path("<slug:action_slug>/secrets/<str:secret_name>/delete/", secrets_views.secret_delete, name="secret_delete"),
    path("<slug:action_slug>/diff/", version_views.version_diff, name="diff"),
    path("<slug:action_slug>/versions/<str:version_label>/", version_views.version_detail, name="version"),
    path(
        "<slug:action_slug>/versions/<str:version_label>/publish/",
        version_views.version_publish,
        name="publish",
    ),
    path(
        "<slug:action_slug>/versions/<str:version_label>/restore/",
        version_views.version_restore,
        name="restore",
    ),
]
