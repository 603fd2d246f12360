"""The FTP protocol without I/O: lines in, replies and actions out.

Rule: nothing in this package imports socket, selectors, ssl, signal or threading.
A test enforces it.
"""
