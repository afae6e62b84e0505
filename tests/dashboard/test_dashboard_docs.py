"""docs/dashboard.md names the pages that exist and states the limits the code keeps."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from leadscore.dashboard import accounts, auth, leads, model, queue, reports, settings
from leadscore.dashboard.routes import ROUTERS
from leadscore.service import preview
from leadscore.service import reports as runs
from leadscore.service.scoring import TOP_REASONS

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "dashboard.md").read_text(encoding="utf-8")
PROSE = " ".join(GUIDE.split())  # line breaks are the editor's, not the meaning's
# Answers to a link or button rather than pages of their own: the confirmations, the
# sign-in form and the redirects.
NOT_PAGES = {"/ui/", "/ui/login", "/ui/model/drafts"}
CONFIRMATION = re.compile(r"/(revoke|delete|publish|rollback)$")
SPELLED = {3: "three", 5: "five"}  # a change to these numbers must change the guide's words


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.split("?")[0]).rstrip("/")


def _pages() -> set[str]:
    found = set()
    for router in ROUTERS:
        for route in router.routes:
            path = getattr(route, "path", "")
            methods = getattr(route, "methods", set())
            if "GET" in methods and path not in NOT_PAGES and not CONFIRMATION.search(path):
                found.add(_shape(path))
    return found


def test_the_guide_names_every_page_and_no_other() -> None:
    named = {_shape(p) for p in re.findall(r"`(/ui[^`\s]*)`", GUIDE)}
    pages = _pages()
    assert len(pages) >= 11
    assert not pages - named, f"pages missing from docs/dashboard.md: {sorted(pages - named)}"
    unknown = named - pages - {"/ui"}
    assert not unknown, f"docs/dashboard.md names pages that do not exist: {sorted(unknown)}"


@pytest.mark.parametrize(
    ("phrase", "value"),
    [
        ("After {} failed sign-ins", auth.Throttle().limit),
        ("within {} minutes", auth.Throttle().window // timedelta(minutes=1)),
        ("One address gets {} failures", auth.Throttle().per_address),
        ("One name gets {} failures across all addresses", auth.Throttle().per_name),
        ("in the last {} days", auth.Throttle().remember // timedelta(days=1)),
        ("A user keeps at most {} sessions", auth.MAX_SESSIONS),
        ("At most {} runs of one user", runs.WAITING_PER_USER),
        ("and {} in all", runs.WAITING_IN_ALL),
        ("Only the newest {} runs are kept", runs.KEPT_RUNS),
        ("valid for {} hours", auth.SESSION_HOURS),
        ("passwords have at least {} characters", auth.MIN_PASSWORD),
        ("the new one (at least {} characters", auth.MIN_PASSWORD),
        ("a failed sign-in: after {} within", auth.Throttle().limit),
        ("the {} most urgent are listed", queue.QUEUE_LIMIT),
        ("the {} rules that gave the lead the most points", SPELLED[TOP_REASONS]),
        ("{} to a page", leads.PAGE_SIZE),
        ("Up to {} matches", f"{leads.COUNT_CAP:,}"),
        ("lists the {} best-scored of them", f"{leads.SHOWN_CAP:,}"),
        ("SLA tasks (newest {})", leads.TASK_LIMIT),
        ("(newest {}) with the deal value", leads.OUTCOME_LIMIT),
        ("The first {} by score are listed", leads.STAKEHOLDER_LIMIT),
        ("The newest {} of each kind are shown", leads.TIMELINE_LIMIT),
        ("for the {} most recently viewed", leads.PLOT_CACHE),
        ("{} accounts a page", accounts.PAGE_SIZE),
        ("lists the {} best-scored stakeholders", accounts.STAKEHOLDERS_SHOWN),
        ("the {} latest jobs", SPELLED[model.JOBS_SHOWN]),
        ("the {} newest stored versions", model.VERSIONS_SHOWN),
        ("every {} seconds while the job", model.REFRESH_SECONDS),
        ("(the {} latest previewed versions)", preview.KEEP),
        ("the latest {} runs", reports.RUNS_SHOWN),
        ("reloads every {} seconds until the report", reports.REFRESH_SECONDS),
        ("horizon in days ({})", reports.HORIZON_DAYS),
        ("{} a page (*Older deliveries*)", settings.LOG_PAGE),
    ],
)
def test_the_guide_states_the_limits_the_code_keeps(phrase: str, value: object) -> None:
    assert phrase.format(value) in PROSE, phrase
