"""Filesystems behind one small interface (fs.base.FileSystem)."""
