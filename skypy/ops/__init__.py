"""skypy.ops: operator tools built on the service API.

`debug` is the debug protocol every service answers, `console` the debug
console's commands, `msglog` the per-service message logs. Import the
module you need; this package re-exports nothing.
"""

__all__: list[str] = []
