"""``python -m trpo_tf ...`` is the ``trpo`` command."""

import sys

from trpo_tf.cli import main

sys.exit(main())
