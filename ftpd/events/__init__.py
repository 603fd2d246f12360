"""Events: the in-process bus, NcFTPd-format messages and their sinks, the xferlog writer,
and the ftpd-eventd receiver. Importing this package imports nothing else."""
