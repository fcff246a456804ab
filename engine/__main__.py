"""``python -m engine``."""

import sys

from engine.allocator import prefer_jemalloc

prefer_jemalloc()  # before pyarrow loads: it picks its allocator once

from engine.cli import main  # noqa: E402

sys.exit(main())
