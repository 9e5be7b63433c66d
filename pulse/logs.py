"""Structured logs: one JSON object per line, carrying the request id, account, ticket id and
workflow id of whatever the line was written for, with secrets scrubbed.

Where those fields come from:

- **API requests**: ``pulse.api.observability`` opens a ``LogContext`` per request (its request id)
  and the request's dependencies ``bind`` the account (after authentication) and the ticket of
  the path. The context is one mutable object per request held in a ``ContextVar``, so what a
  dependency binds is seen by every later line of the same request, even across the copies of
  the context that anyio and thread pools make.
- **Activities**: ``temporalio.activity.info()`` (workflow id ``ticket-<account>-<ticket>``).
- **Workflows**: ``temporalio.workflow.logger`` adds ``temporal_workflow`` (its workflow id) to
  every record; the ticket and account are read from that id.

Never logged: bearer tokens (``pulse_…``, ``Bearer …``), base64 keys of 32 bytes (the secrets key,
payload keys), and any ``extra`` field whose name says it holds a secret. Stdlib ``logging`` and
a formatter, no extra dependency (docs/decisions.md, "Observability").
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any

TICKET_WORKFLOW_ID = re.compile(r"^ticket-(\d+)-(\d+)$")
# Pulse's tokens, bearer credentials, 32-byte keys in (URL-safe) base64, key=value secrets.
_SECRET_TEXT = (
    (re.compile(r"pulse_[A-Za-z0-9_\-]{8,}"), "pulse_[redacted]"),
    (re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+"), r"\1 [redacted]"),
    (re.compile(r"[A-Za-z0-9+/_\-]{43}="), "[redacted-key]"),
    (re.compile(r"(?i)\b(api[_-]?key|apikey|secret|password|token|authorization|webhook[_-]?secret)"
                r"(['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"), r"\1\2[redacted]"),
)
# One search that every text with a secret matches (most lines have none: they skip the four subs).
_MAYBE_SECRET = re.compile(r"pulse_|[A-Za-z0-9+/_\-]{43}=|(?i:bearer|basic|api[_-]?key|apikey|secret|password|token"
                           r"|authorization)")
_SECRET_NAME = re.compile(r"(?i)(authorization|token|secret|password|api_?key|payload_?keys|credential|cookie)")
# LogRecord's own attributes: everything else on a record is an ``extra`` field.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


@dataclass
class LogContext:
    request_id: str | None = None
    account_id: int | None = None
    ticket_id: int | None = None
    workflow_id: str | None = None


_current: ContextVar[LogContext | None] = ContextVar("pulse_log_context", default=None)


def open_context(request_id: str) -> Any:
    """A fresh context for one request; returns the token to ``close_context`` with."""
    return _current.set(LogContext(request_id=request_id))


def close_context(token: Any) -> None:
    _current.reset(token)


def bind(**values: Any) -> None:
    """Add fields to the current request's context (nothing outside a request)."""
    context = _current.get()
    if context is None:
        return
    for name, value in values.items():
        setattr(context, name, value)


def current() -> LogContext | None:
    return _current.get()


def scrub(text: str) -> str:
    if not _MAYBE_SECRET.search(text):
        return text
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _from_workflow_id(workflow_id: str | None, into: dict[str, Any]) -> None:
    if not workflow_id:
        return
    into.setdefault("workflow_id", workflow_id)
    match = TICKET_WORKFLOW_ID.match(workflow_id)
    if match:
        into.setdefault("account_id", int(match.group(1)))
        into.setdefault("ticket_id", int(match.group(2)))


def _activity_fields(into: dict[str, Any]) -> None:
    try:
        from temporalio import activity

        if not activity.in_activity():
            return
        info = activity.info()
    except Exception:  # noqa: BLE001 - no activity context: nothing to add
        return
    into.setdefault("activity", info.activity_type)
    _from_workflow_id(info.workflow_id, into)


def _safe(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return scrub(value) if isinstance(value, str) else value
    if isinstance(value, dict):
        return {str(k): "[redacted]" if _SECRET_NAME.search(str(k)) else _safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    return scrub(str(value))


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", request_id?, account_id?, ticket_id?, workflow_id?,
    …extra}``: one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        context = _current.get()
        if context is not None:
            for field in fields(context):
                value = getattr(context, field.name)
                if value is not None:
                    entry[field.name] = value
        workflow = getattr(record, "temporal_workflow", None)
        if isinstance(workflow, dict):
            _from_workflow_id(workflow.get("workflow_id"), entry)
            entry.setdefault("workflow_type", workflow.get("workflow_type"))
        elif getattr(record, "temporal_activity", None) is not None or context is None:
            _activity_fields(entry)
        if "workflow_id" not in entry and entry.get("account_id") and entry.get("ticket_id"):
            entry["workflow_id"] = f"ticket-{entry['account_id']}-{entry['ticket_id']}"
        for name, value in record.__dict__.items():
            if name in _RECORD_FIELDS or name in entry or name in ("temporal_workflow", "temporal_activity"):
                continue
            entry[name] = "[redacted]" if _SECRET_NAME.search(name) else _safe(value)
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: int = logging.INFO, *, json_lines: bool = True, stream: Any = None) -> None:
    """The process's logging: JSON lines (or plain text) on stderr; Pulse's loggers at ``level``,
    everything else at WARNING. Temporal's workflow and activity loggers put their info in the
    record (``temporal_workflow`` / ``temporal_activity``), not in the message."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
        from temporalio import activity, workflow

        workflow.logger.workflow_info_on_message = False
        activity.logger.activity_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("pulse").setLevel(level)
    logging.getLogger("temporalio.workflow").setLevel(level)
    logging.getLogger("temporalio.activity").setLevel(level)
