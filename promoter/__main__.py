"""`python -m promoter` entry point."""

from promoter.cli import main

raise SystemExit(main())
