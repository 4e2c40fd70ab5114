"""azcluster's runtime: the CLI and everything that talks to people, Azure and the Pulumi engine."""

__version__ = "0.1.0"
