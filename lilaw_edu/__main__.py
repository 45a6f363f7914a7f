"""``python -m lilaw_edu`` runs the ``lilaw-edu`` command."""
import sys

from .cli import main

sys.exit(main())
