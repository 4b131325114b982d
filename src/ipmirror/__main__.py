"""``python -m ipmirror``: the same as the ``ipmirror`` console script."""

import sys

from ipmirror.cli.main import main

sys.exit(main())
