import sys

from digitlab.cli import main

sys.exit(main())
