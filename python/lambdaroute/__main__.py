"""``python -m lambdaroute``: see :mod:`lambdaroute.cli`."""

import sys

from lambdaroute.cli import main

sys.exit(main())
