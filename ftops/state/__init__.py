"""ftops.state: the state model, its atomic store, and the lock that guards it."""

from ftops.state.model import (
           STATE_FORMAT_VERSION,
           DeploymentRecord,
           FileRecord,
           Intent,
           JobRecord,
           ModelRecord,
           State,
)
from ftops.state.store import (
           STATE_DIR,
           StateLock,
           StateStore,
           locked,
           write_private_file,
)

__all__ = [
           "STATE_DIR",
           "STATE_FORMAT_VERSION",
           "DeploymentRecord",
           "FileRecord",
           "Intent",
           "JobRecord",
           "ModelRecord",
           "State",
           "StateLock",
           "StateStore",
           "locked",
           "write_private_file",
]
