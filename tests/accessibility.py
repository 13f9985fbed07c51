"""axe-core in Debian chromium: the serious and critical accessibility violations of a page.

axe-core comes from npm (package.json, node_modules), never a CDN. It is evaluated in the page
rather than added as a <script> element, which the pages' CSP (script-src 'self') refuses as an
inline script; an evaluation from the test driver is not subject to the CSP.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path
from typing import Any

from playwright.sync_api import Error as PlaywrightError

AXE_SCRIPT = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
# What the browser tests and the production walk fail on; "moderate" and "minor" are advice.
SEVERE_IMPACTS = ("serious", "critical")
# What evaluate() says when the document it ran in was replaced by a navigation.
NAVIGATED_AWAY = ("Execution context was destroyed", "axe is not defined")
RUN_AXE = """async (impacts) => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.filter(v => impacts.includes(v.impact)).map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
  }));
}"""


@cache
def axe_source() -> str:
    if not AXE_SCRIPT.exists():
        raise FileNotFoundError(f"{AXE_SCRIPT} is missing: run `npm ci` (package.json pins axe-core)")
    return AXE_SCRIPT.read_text()


def severe_violations(page: Any) -> list[str]:
    """One line per serious or critical axe-core violation of what the page shows now."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    found = page.evaluate(RUN_AXE, list(SEVERE_IMPACTS))
    return [f"{v['impact']} {v['id']} ({v['help']}) at {', '.join(v['nodes'])}" for v in found]


class AccessibilityAudit:
    """Runs axe-core on every page a browser test opens: after each page.goto, reload and
    wait_for_url, before each goto or reload leaves a page (so what htmx swapped in is checked
    too), on the last state when the context closes, and then on every other URL the page
    navigated to (a click, a form's redirect) that was never checked."""

    def __init__(self) -> None:
        self.violations: list[str] = []

    def watch_context(self, context: Any) -> Any:
        pages: list[Any] = []
        new_page, close = context.new_page, context.close

        @wraps(new_page)
        def watched_new_page(*args: Any, **kwargs: Any) -> Any:
            page = new_page(*args, **kwargs)
            pages.append(self.watch(page))
            return page

        @wraps(close)
        def finish_then_close(*args: Any, **kwargs: Any) -> Any:
            for finish in pages:
                finish()
            return close(*args, **kwargs)

        context.new_page, context.close = watched_new_page, finish_then_close
        return context

    def watch(self, page: Any) -> Callable[[], None]:
        """Check `page` as it navigates; returns the check to run before its context closes."""
        visited: dict[str, None] = {}  # an ordered set
        checked: set[str] = set()

        def check() -> None:
            for attempt in range(2):
                url = page.url
                if not url.startswith("http"):
                    return
                page.wait_for_load_state("networkidle")
                try:
                    found = severe_violations(page)
                except PlaywrightError as error:
                    # A click's navigation replaced the document mid-check: check the new one.
                    if attempt or not any(sign in str(error) for sign in NAVIGATED_AWAY):
                        raise
                    continue
                checked.add(url)
                self.violations += [f"{url}: {violation}" for violation in found]
                return

        def noted(frame: Any) -> None:
            if frame == page.main_frame:
                visited[frame.url] = None

        def check_around(method: Callable[..., Any], *, before: bool) -> Callable[..., Any]:
            @wraps(method)
            def checked_method(*args: Any, **kwargs: Any) -> Any:
                if before:
                    check()
                answer = method(*args, **kwargs)
                check()
                return answer

            return checked_method

        def finish() -> None:
            if page.is_closed():
                return
            check()
            for url in [url for url in visited if url not in checked and url.startswith("http")]:
                goto(url)
                check()

        page.on("framenavigated", noted)
        goto = page.goto
        page.goto = check_around(page.goto, before=True)
        page.reload = check_around(page.reload, before=True)
        page.wait_for_url = check_around(page.wait_for_url, before=False)
        return finish
