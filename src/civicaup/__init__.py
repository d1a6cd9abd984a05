"""civicaup: a city acceptable-use policy, run as software."""
__version__ = "0.1.0"
