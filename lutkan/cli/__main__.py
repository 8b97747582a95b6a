"""``python -m lutkan.cli``: the ``lutkan`` command."""

import sys

from lutkan.cli import main

sys.exit(main())
