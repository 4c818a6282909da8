"""Log lines name the service, and the trace, order and event they belong to; no I/O."""

import json
import logging
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider

from chassis import logs
from chassis.settings import LogFormat


def record(message: str = "charged %s", *args: object) -> logging.LogRecord:
    return logging.LogRecord(
        "payment_service.handlers", logging.INFO, __file__, 1, message, args, None
    )


def test_a_json_line_has_time_level_service_logger_and_message() -> None:
    line = json.loads(logs.JsonFormatter("payment").format(record("charged %s", 500)))
    assert line["level"] == "INFO"
    assert (line["service"], line["logger"], line["message"]) == (
        "payment",
        "payment_service.handlers",
        "charged 500",
    )
    assert line["time"].endswith("+00:00")
    assert "trace_id" not in line and "order_id" not in line


def test_a_line_written_in_a_span_about_an_order_names_both() -> None:
    tracer = TracerProvider().get_tracer("test")
    with (
        tracer.start_as_current_span("process") as span,
        logs.about(order_id="o-1", event_id="e-1"),
    ):
        line = json.loads(logs.JsonFormatter("payment").format(record()))
        console = logs.ConsoleFormatter("payment").format(record())
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert (line["order_id"], line["event_id"]) == ("o-1", "e-1")
    assert f"order_id=o-1 event_id=e-1 trace_id={line['trace_id']}]" in console
    assert "payment payment_service.handlers: charged" in console


def test_the_context_ends_with_its_block() -> None:
    with logs.about(order_id="o-1"):
        pass
    assert "order_id" not in json.loads(logs.JsonFormatter("order").format(record()))


def test_an_exception_is_kept_in_the_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failing = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = json.loads(logs.JsonFormatter("order").format(failing))
    assert "ValueError: boom" in line["exception"]


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [
        ("json", logs.JsonFormatter),
        ("console", logs.ConsoleFormatter),
        ("auto", logs.JsonFormatter),
    ],
)
def test_the_format_is_a_setting_and_auto_is_json_off_a_terminal(
    chosen: LogFormat, expected: type[logging.Formatter]
) -> None:
    # Under pytest standard error is not a terminal, so `auto` means JSON.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure_logging("order", "INFO", chosen)
        assert isinstance(root.handlers[0].formatter, expected)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
