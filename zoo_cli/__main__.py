"""`python -m zoo_cli`: the `zoo` command."""

import sys

from zoo_cli import main

sys.exit(main())
