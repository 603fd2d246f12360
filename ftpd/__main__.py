"""``python -m ftpd`` is the ``ftpd`` command."""

from ftpd.cli import main

if __name__ == "__main__":
    main()
