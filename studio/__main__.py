"""`python -m studio` behaves exactly like the `studio` command."""

from studio.cli import main

raise SystemExit(main())
