"""The logger service: writes each log line as skynet does.

To stderr as ``[:0000000a] text``; to the file named by the config's
`logger` key with a timestamp, ``dd/mm/yy HH:MM:SS.cc [:0000000a] text``,
reopened on SIGHUP (sent as the system command "reopen") for log rotation.
"""

import sys
import time

import skypy


class Log:
    def __init__(self, path):
        self.path = path
        self.file = sys.stderr if path is None else open(path, "a", encoding="utf-8")

    def write(self, session, source, text):
        if self.path is None:
            self.file.write(f"[{skypy.address(source)}] {text}\n")
        else:
            now = time.time()
            stamp = time.strftime("%d/%m/%y %H:%M:%S", time.localtime(now))
            self.file.write(f"{stamp}.{int(now * 100) % 100:02d} [{skypy.address(source)}] {text}\n")
        self.file.flush()

    def command(self, session, source, cmd):
        if cmd == "reopen" and self.path is not None:
            self.file.close()
            self.file = open(self.path, "a", encoding="utf-8")
        if session:
            skypy.ret()


async def main(path=None):
    log = Log(path)
    skypy.register(".logger")
    skypy.dispatch("text", log.write)
    skypy.dispatch("system", log.command)
