"""The logger service: writes each log line as skynet does, and hands it to Python's logging.

To stderr as ``[:0000000a] text``; to the file named by the config's
`logger` key with a timestamp, ``dd/mm/yy HH:MM:SS.cc [:0000000a] text``,
reopened on SIGHUP (sent as the system command "reopen") for log rotation.
With ``[log] format = "json"``, one JSON object a line instead. Each line
is also a record of Python logger ``skypy.<label>`` (skypy.log.bridge).

A line comes as a "text" message: ``text, level, label`` (the level a
number of Python's logging, the label the source service's).
"""

import logging
import sys

import skypy
from skypy import log as skylog


class Log:
    def __init__(self, path, settings):
        self.path = path
        self.file = sys.stderr if path is None else open(path, "a", encoding="utf-8")
        json = settings.get("format") == "json"
        self.formatter = skylog.JsonFormatter() if json else skylog.SkynetFormatter(stamped=path is not None)

    def write(self, session, source, text, level=logging.INFO, label="node"):
        record = skylog.record(source, text, level, label)
        self.file.write(self.formatter.format(record) + "\n")
        self.file.flush()
        skylog.bridge(record)

    def command(self, session, source, cmd):
        if cmd == "reopen" and self.path is not None:
            self.file.close()
            self.file = open(self.path, "a", encoding="utf-8")
        if session:
            skypy.ret()


async def main(path=None):
    log = Log(path, skypy.getenv("log") or {})
    skypy.register(".logger")
    skypy.dispatch("text", log.write)
    skypy.dispatch("system", log.command)
