"""`python -m daemon.cli`: the same as the `st-intacct-sync` command."""

from daemon.cli.parser import main

raise SystemExit(main())
