"""`python -m zoo`: the `zoo` command (see `zoo.cli`)."""

import sys

from zoo.cli import main

sys.exit(main())
