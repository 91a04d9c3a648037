"""Small services and helpers that many tests start from."""

import skypy


def echo(session, source, *args):
    """Answer a call with its own arguments."""
    skypy.ret(*args)


async def echo_service():
    skypy.dispatch("lua", echo)


def write_service(folder, name, source):
    """Put a service module `name` with `source` in `folder` (a service_path entry)."""
    (folder / f"{name}.py").write_text(source)
