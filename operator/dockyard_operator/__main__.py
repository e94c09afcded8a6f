"""`python -m dockyard_operator` is `dockyard`."""

import sys

from dockyard_operator.cli import main

sys.exit(main())
