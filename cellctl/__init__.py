"""cellctl: manage the control plane of a cells v2 compute cloud."""

__version__ = "0.1.0"
