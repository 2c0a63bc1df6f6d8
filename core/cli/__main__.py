"""``python -m core.cli ARGS`` is ``fpx ARGS``."""

import sys

from core.cli import main

sys.exit(main())
