import sys

from arignote.core.cli import main

sys.exit(main())
