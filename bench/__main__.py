import sys

from arignote.bench import main

sys.exit(main())
