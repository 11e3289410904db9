"""`python -m fer3d` = the `fer3d` command."""

import sys

from fer3d.app.cli import main

sys.exit(main())
