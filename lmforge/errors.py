"""The one error type for problems a user or a disk causes, and how the CLI shows them.

A `UserError` carries one line that names the file (or flag) and says what to do, e.g.
`runs/tiny/ckpt-100/model.safetensors: truncated; delete it to resume from the previous
checkpoint`. Every part's own error class (`ShardError`, `MixError`, `TrainingError`, ...)
subclasses it, so the entry point's one handler (`lmforge.cli.LazyGroup.invoke`) prints
`Error: <line>` and exits 1 without a traceback; `lmforge --debug CMD` (or `LMFORGE_DEBUG=1`)
shows the traceback. Anything else that escapes a command is a bug and keeps its traceback.

This module imports nothing heavy: every part imports it.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user (or their disk) caused and can fix; the message is one line naming
    the file or flag and the fix."""
