"""firecrestspawner: run JupyterHub single-user servers as batch jobs through FirecREST.

Importing the package has no side effects beyond its own logger: nothing is
registered, no environment variable is read and no connection is made; the
``firecrestspawner`` logger gets its redaction (:func:`redact.install_redaction`),
so that no record of the package's modules carries a registered secret. The
documented classes live in :mod:`firecrestspawner.spawner`.
"""

import logging as _logging

from ._version import __version__
from .redact import install_redaction as _install_redaction

_install_redaction(_logging.getLogger(__name__))

__all__ = ["__version__"]
