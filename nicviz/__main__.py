import sys

from nicviz.cli import main

sys.exit(main())
