import sys

from collapse_callbacks.cli import main

sys.exit(main())
