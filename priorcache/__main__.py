"""`python -m priorcache ...` is the `priorcache` command."""

import sys

from priorcache.cli import main

sys.exit(main())
