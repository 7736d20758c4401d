"""quota-planner: forecast, negotiate and provision resources for a parent and its sub-accounts.

>>> from planner import plan
>>> from planner.io import load
"""

from planner.api import METHODS, plan

__version__ = "0.1.0"
__all__ = ["METHODS", "__version__", "plan"]
