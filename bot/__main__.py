"""`python -m bot`: the same CLI as `feature-crew`."""

from bot.cli import main

raise SystemExit(main())
