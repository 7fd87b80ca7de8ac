"""One word per concept in the Chinese interface (the glossary of docs/ARCHITECTURE.md): a worker's
escalation is 提级, never 上报 (a resident's report); an event is closed 结案, never 办结 (completing
a task)."""

from __future__ import annotations

from web.i18n import catalogue

ZH = catalogue("zh-CN")
#: Keys that name the event's close, and keys that name a worker's escalation.
CLOSE = ("state.closed", "stage.close", "action.close", "event.closed", "notice.closed", "track.explain.closed",
         "msg.supervised.close")
ESCALATE = ("action.escalate", "task.escalate", "task.escalate.submit", "msg.requested.escalate",
            "event.escalated_count")


def test_the_event_is_closed_with_jiean_and_tasks_are_completed_with_banjie() -> None:
    for key in CLOSE:
        assert "结案" in ZH[key] and "办结" not in ZH[key], (key, ZH[key])
    assert "办结" in ZH["task.complete"] and "办结" in ZH["action.complete"]


def test_an_escalation_is_tiji_not_a_report() -> None:
    for key in ESCALATE:
        assert "提级" in ZH[key] and "上报" not in ZH[key], (key, ZH[key])
    assert "上报" in ZH["report.title"]


def test_no_close_or_escalation_text_uses_the_other_word() -> None:
    for key, text in ZH.items():
        if key.startswith(("state.closed", "stage.close")) or "escalat" in key:
            assert "办结" not in text and "上报" not in text, (key, text)
