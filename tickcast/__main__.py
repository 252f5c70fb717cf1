"""``python -m tickcast`` is the ``tickcast`` console script."""

from tickcast.cli import main

raise SystemExit(main())
