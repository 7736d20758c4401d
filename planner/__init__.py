"""quota-planner: forecast, negotiate and provision resources for a parent and its sub-accounts."""

__version__ = "0.1.0"
