"""``python -m skypy …`` is the ``skypy`` command."""

import sys

from .cli import main

sys.exit(main())
