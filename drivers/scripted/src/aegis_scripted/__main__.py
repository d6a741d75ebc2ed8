"""``python -m aegis_scripted``: run the scripted ACP agent on stdin/stdout."""

from aegis_scripted.agent import main

raise SystemExit(main())
