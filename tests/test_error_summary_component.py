"""One error summary for every form (templates/components/error_summary.html): a refused form
shows one role="alert" box at the top with a heading and, for each field error, a link to that
field; and no other template writes such a box by hand."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.factories import editor_post, web

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
COMPONENT = "components/error_summary.html"
HEADINGS = ("h2", "h3", "h4", "h5", "h6")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Summary:
    def __init__(self, attrs: dict[str, str]) -> None:
        self.attrs = attrs
        self.headings: list[str] = []
        self.links: list[str] = []
        self.text = ""


class AlertParser(HTMLParser):
    """The role="alert" boxes of a page (their heading texts, fragment links and text) and every id."""

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[Summary] = []
        self.ids: set[str] = set()
        self._open: list[str] = []  # tags open inside the current alert
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if "id" in found:
            self.ids.add(found["id"])
        if tag in VOID:
            return
        if self._open:
            self._open.append(tag)
            if tag in HEADINGS:
                self._heading = []
            if tag == "a" and found.get("href", "").startswith("#"):
                self.alerts[-1].links.append(found["href"][1:])
        elif found.get("role") == "alert":
            self.alerts.append(Summary(found))
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self._open or tag in VOID:
            return
        if tag in HEADINGS and self._heading is not None:
            self.alerts[-1].headings.append(" ".join("".join(self._heading).split()))
            self._heading = None
        self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open:
            self.alerts[-1].text += data
            if self._heading is not None:
                self._heading.append(data)


def the_summary(html: str) -> tuple[Summary, set[str]]:
    """The page's one alert, which must be an error summary with a heading; and the page's ids."""
    parser = AlertParser()
    parser.feed(html)
    assert len(parser.alerts) == 1, [alert.text for alert in parser.alerts]
    summary = parser.alerts[0]
    assert "form-errors" in summary.attrs.get("class", "").split()
    assert summary.attrs.get("tabindex") == "-1"  # focus can be moved to it
    assert len(summary.headings) == 1 and summary.headings[0]
    return summary, parser.ids


def test_a_refused_action_links_each_field_error_to_its_field(personas: Any) -> None:
    response = web(personas.editor).post("/t/acme/actions/new/", editor_post(name="", compatible_triggers=[]))
    summary, ids = the_summary(response.content.decode())
    assert summary.headings[0].startswith("Nothing was saved.")
    assert summary.links == ["id_name", "id_compatible_triggers_0"]
    assert set(summary.links) <= ids


def test_a_refused_new_flow_links_each_field_error_to_its_field(personas: Any) -> None:
    response = web(personas.editor).post("/t/acme/flows/new/", {"name": "", "slug": "Bad Slug!"})
    summary, ids = the_summary(response.content.decode())
    assert summary.attrs["id"] == "form-errors"
    assert summary.headings == ["Nothing was created. Fix the following:"]
    assert summary.links == ["id_name", "id_slug", "id_kind_0"]  # the kind's first radio button
    assert set(summary.links) <= ids


def test_a_refused_token_links_each_field_error_to_its_field(personas: Any) -> None:
    response = web(personas.owner).post(
        "/t/acme/settings/tokens/",
        {"name": "", "expiry": "30"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="api-tokens",
    )
    summary, ids = the_summary(response.content.decode())
    assert summary.headings == ["No token was created. Fix the following:"]
    assert summary.links == ["id_name", "id_scopes_0"]
    assert set(summary.links) <= ids


def test_a_refused_invitation_links_the_address_to_its_field(personas: Any) -> None:
    response = web(personas.admin).post(
        "/t/acme/settings/invitations/",
        {"email": "newbie@", "role": "admin"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="members",
    )
    summary, ids = the_summary(response.content.decode())
    assert summary.headings == ["Nobody was invited. Fix the following:"]
    assert summary.links == ["id_email"] and "id_email" in ids


def test_a_refused_sign_in_says_so_once_without_naming_which_part_was_wrong(client: Any, personas: Any) -> None:
    response = client.post("/accounts/login/", {"username": personas.viewer.username, "password": "wrong"})
    summary, _ = the_summary(response.content.decode())
    assert summary.headings == ["Your username and password didn't match. Please try again."]
    assert summary.links == []


def test_a_valid_form_shows_no_summary(client: Any) -> None:
    assert 'role="alert"' not in client.get("/accounts/login/").content.decode()


# ---- The rule: a template shows form errors at the top only through the component --------

HAND_WRITTEN = {
    "a box classed form-errors": re.compile(r'class="form-errors"'),
    "a loop over a form's field errors": re.compile(r"{%\s*for\s+\w+\s+in\s+field\.errors\s*%}"),
    "a form's non-field errors": re.compile(r"non_field_errors"),
}
INCLUDE = re.compile(r"{%\s*include\s+[\"']" + re.escape(COMPONENT) + r"[\"'](?P<rest>.*?)%}", re.DOTALL)


def templates() -> list[Path]:
    return sorted(path for path in TEMPLATES.rglob("*.html") if path != TEMPLATES / COMPONENT)


@pytest.mark.parametrize("path", templates(), ids=lambda path: str(path.relative_to(TEMPLATES)))
def test_no_template_hand_writes_an_error_summary(path: Path) -> None:
    text = path.read_text()
    outside_includes = INCLUDE.sub("", text)  # what a page passes to the component is fine
    found = [what for what, pattern in HAND_WRITTEN.items() if pattern.search(outside_includes)]
    assert not found, f"{path.relative_to(TEMPLATES)} has {', '.join(found)}: include {COMPONENT} instead"
    for include in INCLUDE.finditer(text):
        # Without `only` the page's own `form` or the messages framework's `messages` would leak in.
        assert include["rest"].split()[-1:] == ["only"], f"{path.relative_to(TEMPLATES)}: {include[0]}"


def test_the_component_is_used_by_forms_of_several_apps() -> None:
    users = {path.relative_to(TEMPLATES).parts[0] for path in templates() if COMPONENT in path.read_text()}
    assert {"actions_app", "audit_app", "flows_app", "registration", "tenants", "components"} <= users
