"""`python -m zoo`: the `zoo` command (see `zoo_cli`)."""

import sys

from zoo_cli import main

sys.exit(main())
