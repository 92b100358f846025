"""`python -m kubedrill`: the same as the `kubedrill` command. Undo records name it this way
(with the interpreter that wrote them), so `kubedrill heal` replays them whatever PATH is."""

from __future__ import annotations

import sys

from kubedrill.cli import main

sys.exit(main())
