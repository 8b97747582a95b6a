"""``python -m lutkan.bench.report results.json``: re-render report.md beside a saved results.json."""

import sys

from lutkan.bench.report import main

sys.exit(main())
