"""tsad: nightly anomaly detection for industrial sensor fleets with PyTorch autoencoders.

Importing ``tsad`` is cheap: torch and pandas load only inside the functions that need them.
"""

__version__ = "0.1.0"
