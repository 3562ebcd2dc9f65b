"""firecrestspawner: run JupyterHub single-user servers as batch jobs through FirecREST.

Importing the package has no side effects: nothing is registered, no environment
variable is read and no connection is made. The documented classes live in
:mod:`firecrestspawner.spawner`.
"""

from ._version import __version__

__all__ = ["__version__"]
