"""Optima BI: business answers for AI assistants over an e-commerce platform."""

__version__ = "0.1.0"
