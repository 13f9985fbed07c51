from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import close_old_connections, connection

from actions_app.models import Action, ActionVersion
from actions_app.versioning import (
    CompileFailed,
    InvalidDraft,
    NothingChanged,
    VersionConflict,
    VersionDraft,
    create_custom_action,
    next_version_label,
    publish_version,
    save_action_version,
)
from audit_app.models import AuditEvent
from tenants.acting import Acting
from tests.factories import BAD, GOOD, SCHEMA, TRIGGERS, acting_as, create, draft


def save(action: Action, personas: Any, d: VersionDraft, **kwargs: Any) -> ActionVersion:
    return save_action_version(action, d, **kwargs, acting=acting_as(personas.editor)).version


def test_the_first_save_is_0_1_0_draft_and_is_audited(personas: Any) -> None:
    version = create(personas)
    assert (version.version, version.status, version.saved_with_errors) == ("0.1.0", "draft", False)
    assert "exports.execute" in version.compiled_js
    events = list(AuditEvent.objects.filter(tenant=personas.tenant_a, action_slug="my-action").order_by("id"))
    assert [e.type for e in events] == ["action.created", "action.version_saved"]
    assert events[1].action_version == "0.1.0"
    assert events[1].actor_name == "a-editor"


def test_later_saves_bump_patch_by_default_or_as_asked(personas: Any) -> None:
    action = create(personas).action
    assert save(action, personas, draft(GOOD + "\n// 2")).version == "0.1.1"
    assert save(action, personas, draft(GOOD + "\n// 3"), bump="minor").version == "0.2.0"
    assert save(action, personas, draft(GOOD + "\n// 4"), bump="major").version == "1.0.0"
    assert save(action, personas, draft(GOOD + "\n// 5"), explicit_version="3.1.4").version == "3.1.4"
    with pytest.raises(InvalidDraft) as error:
        save(action, personas, draft(GOOD + "\n// 6"), explicit_version="2.0.0")
    assert "higher than the latest version 3.1.4" in error.value.errors["version"][0]
    with pytest.raises(InvalidDraft):
        save(action, personas, draft(GOOD + "\n// 6"), explicit_version="banana")


def test_identical_content_creates_nothing(personas: Any) -> None:
    action = create(personas).action
    with pytest.raises(NothingChanged):
        save(action, personas, draft())
    # Trigger order does not make content different either.
    save(action, personas, draft(triggers=["login.post-auth", "login.post-login"]))
    with pytest.raises(NothingChanged):
        save(action, personas, draft(triggers=["login.post-login", "login.post-auth"]))
    assert action.versions.count() == 2


def test_schema_and_trigger_changes_are_new_versions(personas: Any) -> None:
    action = create(personas).action
    assert save(action, personas, draft(schema={"type": "object", "properties": {}})).version == "0.1.1"
    assert save(action, personas, draft(triggers=["login.post-login"])).version == "0.1.2"


def test_type_errors_refuse_the_save_unless_saved_anyway(personas: Any) -> None:
    action = create(personas).action
    with pytest.raises(CompileFailed) as failed:
        save(action, personas, draft(BAD))
    diagnostic = failed.value.diagnostics[0]
    assert (diagnostic.line, diagnostic.code) == (2, "TS2820")
    assert action.versions.count() == 1
    forced = save(action, personas, draft(BAD), save_anyway=True)
    assert forced.saved_with_errors and forced.version == "0.1.1"
    with pytest.raises(InvalidDraft, match="cannot be published"):
        publish_version(forced, acting=acting_as(personas.admin))


def test_a_stale_editor_gets_a_conflict_not_an_overwrite(personas: Any) -> None:
    action = create(personas).action
    save(action, personas, draft(GOOD + "// theirs"), base_version="0.1.0")
    with pytest.raises(VersionConflict) as conflict:
        save(action, personas, draft(GOOD + "// mine"), base_version="0.1.0")
    assert conflict.value.latest.version == "0.1.1"
    assert "theirs" in conflict.value.latest.source
    assert action.versions.count() == 2


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("slug", {"slug": "Not A Slug"}),
        ("slug", {"slug": "new"}),
        ("name", {"name": "  "}),
    ],
)
def test_bad_metadata_is_named(personas: Any, field: str, kwargs: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"name": "Fine name", "slug": "fine-slug", **kwargs}
    with pytest.raises(InvalidDraft) as error:
        create_custom_action(personas.tenant_a, draft=draft(), **arguments, acting=Acting.platform("tests"))
    assert field in error.value.errors


def test_a_slug_is_unique_in_a_tenant_not_across_tenants(personas: Any) -> None:
    create(personas)
    with pytest.raises(InvalidDraft, match="already exists"):
        create(personas)
    with pytest.raises(InvalidDraft, match="already exists"):
        create(personas, slug="domain-allowlist")
    other = create_custom_action(
        personas.tenant_b, name="x", slug="my-action", draft=draft(), acting=Acting.platform("tests")
    )
    assert other.version.version == "0.1.0"


@pytest.mark.parametrize(
    ("d", "field"),
    [
        (VersionDraft(GOOD, SCHEMA, []), "compatible_triggers"),
        (VersionDraft(GOOD, SCHEMA, ["login.nowhere"]), "compatible_triggers"),
        (VersionDraft(GOOD, {"type": "strng"}, TRIGGERS), "config_schema"),
        (VersionDraft(GOOD, {"type": "object", "properties": {"x": {"anyOf": []}}}, TRIGGERS), "config_schema"),
        (VersionDraft("x" * (101 * 1024), SCHEMA, TRIGGERS), "source"),
        (VersionDraft("   ", SCHEMA, TRIGGERS), "source"),
    ],
)
def test_bad_drafts_are_refused_with_the_field_named(personas: Any, d: VersionDraft, field: str) -> None:
    action = create(personas).action
    with pytest.raises(InvalidDraft) as error:
        save(action, personas, d)
    assert field in error.value.errors


def test_publishing_marks_the_version_and_is_audited_once(personas: Any) -> None:
    version = create(personas)
    publish_version(version, acting=acting_as(personas.admin))
    publish_version(version, acting=acting_as(personas.admin))
    version.refresh_from_db()
    assert version.status == "published" and version.published_by == personas.admin
    events = AuditEvent.objects.filter(tenant=personas.tenant_a, type="flow.action_published")
    assert [(e.action_slug, e.action_version) for e in events] == [("my-action", "0.1.0")]


def test_next_version_label() -> None:
    assert next_version_label(None) == "0.1.0"
    assert next_version_label("0.1.9") == "0.1.10"
    assert next_version_label("1.2.3", "minor") == "1.3.0"
    assert next_version_label("1.2.3", "major") == "2.0.0"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_parallel_saves_on_postgresql_land_as_distinct_versions(personas: Any) -> None:
    action = create(personas).action
    outcomes: list[Any] = []
    barrier = threading.Barrier(4)

    def save_in_thread(n: int) -> None:
        barrier.wait()
        try:
            outcomes.append(save(action, personas, draft(GOOD + f"// writer {n}")).version)
        except Exception as error:  # collected and asserted below
            outcomes.append(error)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=save_in_thread, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["0.1.1", "0.1.2", "0.1.3", "0.1.4"]
    sources = set(action.versions.exclude(version="0.1.0").values_list("source", flat=True))
    assert len(sources) == 4


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_parallel_editor_saves_from_one_base_on_postgresql_refuse_all_but_one(personas: Any) -> None:
    action = create(personas).action
    outcomes: list[Any] = []
    barrier = threading.Barrier(3)

    def save_in_thread(n: int) -> None:
        barrier.wait()
        try:
            outcomes.append(save(action, personas, draft(GOOD + f"// editor {n}"), base_version="0.1.0").version)
        except VersionConflict as conflict:
            outcomes.append(conflict)
        finally:
            connection.close()

    threads = [threading.Thread(target=save_in_thread, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    saved = [o for o in outcomes if isinstance(o, str)]
    conflicts = [o for o in outcomes if isinstance(o, VersionConflict)]
    assert saved == ["0.1.1"] and len(conflicts) == 2
    assert all(c.latest.version == "0.1.1" for c in conflicts)
