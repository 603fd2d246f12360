"""An example ftpd module: refuse .exe uploads, cap the files in a directory, and
count uploads in the server scope (shown by ``SITE UPLOADS``).

Load it with ``modules = ["upload_guard"]`` in the config file (on PYTHONPATH), or
declare it in the ``ftpd.modules`` entry-point group of your package."""

MAX_FILES_PER_DIR = 1000


def refuse_exe(view, cmd):
    """PRE hook: adding to the error chain refuses the command; it never runs. A hook
    gets a view of the session (who, where, the scopes; ``docs/MODULES.md``)."""
    if cmd.arg.lower().endswith(".exe"):
        cmd.add_err(553, "Uploads of .exe files are not allowed here.")


def cap_directory(view, cmd):
    """PRE hook that needs the filesystem: it yields the call instead of making it (the
    worker pool runs it, the answer comes back at the yield, the loop goes on)."""
    directory = view.resolve(cmd.arg).rsplit("/", 1)[0] or "/"
    names = yield view.ask("listdir", directory)
    if len(names) >= MAX_FILES_PER_DIR:
        cmd.add_err(552, f"{directory} already holds {MAX_FILES_PER_DIR} files.")


def setup(ftpd):
    for verb in ("STOR", "STOU", "APPE"):
        ftpd.pre(verb, refuse_exe)
        ftpd.pre(verb, cap_directory)
    ftpd.scope["uploads"] = 0

    def count(event, user_data):
        if event.status == "OK":
            ftpd.scope["uploads"] += 1

    ftpd.on("fs.upload", count)

    @ftpd.site("UPLOADS", help="SITE UPLOADS (uploads since the server started)")
    def site_uploads(session, cmd):  # a command's handler gets the session itself
        cmd.add(200, f"{ftpd.scope['uploads']} upload(s) since the server started.")

    def note(view, cmd):
        """POST hook: DUP continues the reply another handler started."""
        cmd.add(0, "Checked by upload_guard.")

    ftpd.post("STOR", note)
