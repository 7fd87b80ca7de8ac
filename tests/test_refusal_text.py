"""Every refusal the rules, the workflow or the web make has a catalogue message in both languages
(issue 10, item 8): a refusal's ``code`` and ``params`` become ``refusal.<code>`` in the page's
language, with codes among the parameters (an action, a state, a task's status) named too."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from web.commands import CommandError, _from_workflow
from web.i18n import catalogue
from workflows import policy

ROOT = Path(__file__).resolve().parent.parent
#: Where refusals are made, and how their codes are written there.
SOURCES = {
    "workflows/policy.py": r'Refused\(\s*[A-Z_]+,\s*"([a-z_]+)"',
    "workflows/event_core.py": r'_reject\([A-Z_]+,[^)]*?,\s*"([a-z_]+)"',
    "web": r'"refusal\.([a-z_]+)"',
}


def _codes() -> set[str]:
    found: set[str] = set()
    for where, pattern in SOURCES.items():
        path = ROOT / where
        for source in ([path] if path.is_file() else sorted(path.glob("*.py"))):
            found |= set(re.findall(pattern, source.read_text(encoding="utf-8"), flags=re.S))
    return found


CODES = sorted(_codes())


def test_the_sources_make_refusals() -> None:
    assert {"cohandling_open", "paused", "not_now", "supervisors_only", "task_other_unit"} <= set(CODES)
    assert len(CODES) > 40


@pytest.mark.parametrize("code", CODES)
def test_every_refusal_has_a_message_in_both_languages_with_the_same_placeholders(code: str) -> None:
    key = f"refusal.{code}"
    zh, en = catalogue("zh-CN").get(key), catalogue("en").get(key)
    assert zh and en, key
    fields = [{name for _, name, _, _ in string.Formatter().parse(text) if name} for text in (zh, en)]
    assert fields[0] == fields[1], (key, fields)
    assert not re.search(r"[A-Za-z]{3,}", re.sub(r"\{[a-z]+\}|[A-Z]+-[A-Z0-9]+", "", zh)), (key, zh)  # Chinese


def test_a_workflow_refusal_becomes_the_page_language_with_codes_named() -> None:
    cause = ApplicationError("action 'complete' is not allowed while the event is 'verification'",
                             {"code": "not_now", "params": {"action": "complete", "state": "verification"}},
                             type="Conflict")
    error = _from_workflow(cause)
    assert (error.status, error.code) == (409, "not_now")
    assert error.reason == "action 'complete' is not allowed while the event is 'verification'"  # the API's
    assert error.text("zh-CN") == "事件当前为“待核查”，不能执行“办结”"
    assert error.text("en") == "'Completed' is not allowed while the event is 'Awaiting verification'"


def test_a_refusal_of_a_free_text_names_the_field() -> None:
    refused = policy.refusal_of_text("reason", "x" * 501, policy.MAX_REASON)
    assert refused is not None
    error = CommandError.refused(refused)
    assert (error.status, error.code) == (400, "input.too_long")
    assert error.text("zh-CN") == "理由：不能超过 500 个字符"


def test_a_refusal_without_a_code_and_an_unknown_code_stay_readable() -> None:
    plain = _from_workflow(ApplicationError("something else", type="Invalid"))
    assert (plain.status, plain.code, plain.text("zh-CN")) == (400, None, "something else")
    made_up = CommandError.keyed(400, "refusal.unknown_action", action="explode")
    assert made_up.text("zh-CN") == "未知的督办操作“explode”"  # not a raw "action.explode"


def test_a_refusal_with_a_status_parameter_is_a_409_not_a_500() -> None:
    """Completing a task already done (a retry whose first answer was lost with a killed web, found by
    the fault suite): the refusal's parameter ``status`` once collided with the HTTP status (a
    TypeError, answered 500, and the retrying client never got its 409)."""
    cause = ApplicationError("task EV-1.T1 is already done",
                             {"code": "task_finished", "params": {"task": "EV-1.T1", "status": "done"}},
                             type="Conflict")
    error = _from_workflow(cause)
    assert (error.status, error.code, error.values) == (409, "task_finished", {"task": "EV-1.T1", "status": "done"})
    assert "EV-1.T1" in error.text("zh-CN")
    web_side = CommandError.refused(policy.Refused(policy.CONFLICT, "task_finished", "task EV-1.T1 is already done",
                                                   task="EV-1.T1", status="done"))
    assert (web_side.status, web_side.values["status"]) == (409, "done")
