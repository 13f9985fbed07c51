"""Reading and posting the flow editor's <form> as a browser would, for view tests."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

URL = "/t/acme/flows/login/"


def editor(client: Any) -> str:
    response = client.get(URL)
    assert response.status_code == 200
    return str(response.content.decode())


class _FormValues(HTMLParser):
    """What a browser would submit for the editor's <form> (buttons aside): name → values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[str, list[str]] = {}
        self._in_form = False
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._in_form = a.get("id") == "flow-editor-form"
        if not self._in_form or "disabled" in a or not a.get("name", "x"):
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in {"checkbox", "radio"} and "checked" not in a:
                return
            if kind not in {"submit", "button"}:
                self.values.setdefault(name, []).append(a.get("value", "on" if kind == "checkbox" else ""))
        elif tag == "select" and name:
            self._select, self._options = name, []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select" and self._select is not None:
            chosen = [v for v, selected in self._options if selected] or [v for v, _ in self._options[:1]]
            self.values.setdefault(self._select, []).extend(chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.values.setdefault(self._textarea, []).append(self._text.removeprefix("\n"))
            self._textarea = None


def form_values(html: str) -> dict[str, list[str]]:
    parser = _FormValues()
    parser.feed(html)
    return parser.values


def press(client: Any, html: str, op: str | None = None, url: str = URL, **changes: Any) -> Any:
    """Post the page's editor form as shown, with `changes` typed in and the `op` button pressed."""
    data: dict[str, Any] = form_values(html)
    for name, value in changes.items():
        data[name.replace("__", "-")] = value
    if op is not None:
        data["op"] = op
    return client.post(url, data)


def uids(html: str, trigger: str) -> list[str]:
    match = re.search(rf'name="order-{re.escape(trigger)}" value="([0-9a-f,]*)"', html)
    assert match, f"no order field for {trigger}"
    return [uid for uid in match.group(1).split(",") if uid]


def field_block(html: str, name: str) -> str:
    """The config field's <div id="field-..."> with its input and errors."""
    start = html.index(f'id="field-{name}"')
    return html[start : html.index("</div>", start)]


def add(client: Any, html: str, trigger: str, action: str) -> tuple[str, str]:
    response = press(client, html, f"add:{trigger}", **{f"add-{trigger}": action})
    assert response.status_code == 200
    page = response.content.decode()
    return page, uids(page, trigger)[-1]
