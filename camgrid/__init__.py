"""camgrid: the central platform for GB/T 28181 camera networks."""

__version__ = "0.1.0"
