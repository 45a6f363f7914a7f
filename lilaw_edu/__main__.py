"""``python -m lilaw_edu`` runs the ``lilaw-edu`` command."""
import sys

from lilaw_edu.cli import main

sys.exit(main())
