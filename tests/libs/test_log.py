"""skypy.log: levels, skypy's lines as records of Python's logging, records of service code carrying
the service's address, and the logger's JSON lines."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest

import skypy
from skypy._core.config import build


class Records(logging.Handler):
    """Keeps every record it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    """Every record logger "skypy" and logger "game" handle while the test runs."""
    handler = Records()
    loggers = [logging.getLogger("skypy"), logging.getLogger("game")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


async def written(node) -> None:
    """Return once the logger has written every line logged before."""
    await node.call(".logger", "system", "flush")


async def talker() -> None:
    skypy.log.debug("a detail")
    skypy.log.info("some news")
    skypy.log.warning("a worry")
    skypy.log.error("a failure")
    skypy.error("skynet's line")


async def test_debug_lines_are_dropped_unless_the_level_is_debug(node, logs):
    await node.newservice(talker)
    texts = [text for _, text in logs]
    assert "a detail" not in texts
    assert {"some news", "a worry", "a failure", "skynet's line"} <= set(texts)


@pytest.mark.skypy_config(log={"level": "debug"})
async def test_debug_lines_are_kept_at_level_debug(node, logs):
    await node.newservice(talker)
    assert "a detail" in [text for _, text in logs]


@pytest.mark.skypy_config(log={"level": "warning"})
async def test_a_higher_level_drops_the_lower_lines(node, logs):
    await node.newservice(talker)
    texts = [text for _, text in logs]
    assert "some news" not in texts and "a worry" in texts


async def test_lines_are_records_of_logger_skypy_label_with_the_address_and_level(node, records):
    handle = await node.newservice(talker)
    await written(node)
    mine = [r for r in records.records if r.name == "skypy.talker"]
    assert [(r.levelname, r.getMessage()) for r in mine if r.getMessage() != "LAUNCH talker"] == [
        ("INFO", "some news"), ("WARNING", "a worry"), ("ERROR", "a failure"), ("INFO", "skynet's line"),
    ]
    assert {r.skypy_address for r in mine} == {skypy.address(handle)}


async def test_a_crash_is_an_error_record_of_the_crashed_services_label(node, records):
    async def crasher() -> None:
        raise ValueError("boom")

    with pytest.raises(skypy.CallError):
        await node.newservice(crasher)
    node.crashes.clear()  # on purpose
    await written(node)
    [crash] = [r for r in records.records if "boom" in r.getMessage()]
    assert crash.name.endswith(".crasher") and crash.levelno == logging.ERROR


async def test_records_service_code_emits_through_logging_carry_its_address(node, records):
    async def game() -> None:
        logging.getLogger("game").warning("player %s joined", "ann")

    handle = await node.newservice(game)
    [record] = [r for r in records.records if r.name == "game"]
    assert record.getMessage() == "player ann joined"
    assert record.skypy_address == skypy.address(handle)


def test_records_from_outside_any_service_carry_no_address(records):
    skypy.log.install_record_factory()  # as open_node does
    logging.getLogger("game").warning("no service here")
    [record] = [r for r in records.records if r.name == "game"]
    assert record.skypy_address is None


async def test_json_format_writes_one_object_a_line_to_the_log_file(tmp_path):
    path = tmp_path / "node.log"
    async with skypy.open_node(logger=path, log={"format": "json"}) as node:
        handle = await node.newservice(talker)
        await written(node)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    worry = next(line for line in lines if line["message"] == "a worry")
    assert worry["level"] == "WARNING" and worry["logger"] == "skypy.talker"
    assert worry["address"] == skypy.address(handle)
    assert worry["time"].endswith("+00:00")


async def test_the_log_file_keeps_skynets_format_by_default(tmp_path):
    path = tmp_path / "node.log"
    async with skypy.open_node(logger=path) as node:
        handle = await node.newservice(talker)
        await written(node)
    assert re.search(rf"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d\.\d\d \[{skypy.address(handle)}\] a worry$", path.read_text(), re.M)


def test_a_bad_log_level_or_format_is_a_config_error():
    with pytest.raises(skypy.ConfigError, match=r"key 'log.level' must be one of"):
        build("test", {"log": {"level": "loud"}})
    with pytest.raises(skypy.ConfigError, match=r"key 'log.format' must be"):
        build("test", {"log": {"format": "xml"}})
