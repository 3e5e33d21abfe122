"""moto's state kept under `<data_dir>/moto`, saved before each state-changing answer.

`Persistence` saves and loads; `PersistenceMiddleware` decides, per request, what to save;
`cli` implements `python -m emulator status` and `--reset`.
"""

from emulator.persistence.fileformat import StateFormatError
from emulator.persistence.middleware import PersistenceMiddleware
from emulator.persistence.store import Persistence

__all__ = ["Persistence", "PersistenceMiddleware", "StateFormatError"]
