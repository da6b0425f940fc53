import sys

from astrlite.cli import main

sys.exit(main())
