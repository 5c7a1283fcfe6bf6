import sys

from dimp_core.cli import main

sys.exit(main())
