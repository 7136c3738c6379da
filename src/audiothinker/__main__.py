import sys

from audiothinker.cli import main

sys.exit(main())
