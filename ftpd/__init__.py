"""ftpd: a selector-based, single-process FTP daemon.

The embedding API lives in :mod:`ftpd.embed`; import it from there so that
``ftpd -I`` does not pay for it at start-up.
"""

__version__ = "0.1.0"
