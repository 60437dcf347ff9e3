"""ftops.state: the state model, the `StateBackend` interface and its backends (local, postgres, s3)."""

from ftops.state.backend import LockInfo, StateBackend, StateWriteError, write_private_file
from ftops.state.backends import open_backend
from ftops.state.model import (
           STATE_FORMAT_VERSION,
           FileRecord,
           Intent,
           JobRecord,
           ModelRecord,
           State,
)
from ftops.state.store import (
           STATE_DIR,
           LocalBackend,
           StateLock,
           StateStore,
           locked,
)

__all__ = [
           "STATE_DIR",
           "STATE_FORMAT_VERSION",
           "FileRecord",
           "Intent",
           "JobRecord",
           "LocalBackend",
           "LockInfo",
           "ModelRecord",
           "State",
           "StateBackend",
           "StateLock",
           "StateStore",
           "StateWriteError",
           "locked",
           "open_backend",
           "write_private_file",
]
