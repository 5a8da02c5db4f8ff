from backerd.cli import main

raise SystemExit(main())
