"""hotline: telephony and ticketing backend for a merged 12345 government service hotline."""

__version__ = "0.1.0"
