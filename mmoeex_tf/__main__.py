"""`python -m mmoeex_tf`: the `mmoeex` command."""

import sys

from mmoeex_tf.cli import main

sys.exit(main())
