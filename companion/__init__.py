"""Companion library of the course *Normalization, Measured*.

Every normalization layer of the course, written from elementary operations and checked
against PyTorch's own. Import the submodules you need::

    from companion import setup_notebook, nn, functional, scaling

Importing the package has no side effects: seeding, thread counts and print options are set
only when a notebook calls :func:`setup_notebook`.
"""

from companion.repro import setup_notebook

__all__ = ["setup_notebook"]
__version__ = "0.1.0"
