"""The service whose code is running, found through a context variable (see _api.messages.running)."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .service import Service

current: contextvars.ContextVar[Service] = contextvars.ContextVar("skypy.service")
