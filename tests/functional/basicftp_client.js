// Drives basic-ftp (Node.js) for tests/functional/test_client_basicftp.py: one Client,
// so one control connection, runs the steps it is given in order and prints one JSON
// line per step ({"step": i, "result": ...}); on an error one {"error": ...} line and
// exit status 1. Every step is bounded by the client's timeout.
//
// usage: node basicftp_client.js '{"host":..., "port":..., "user":..., "password":...,
//        "secure": false | true | "implicit", "ca": "/path/ca.pem" | null,
//        "steps": [["list", "/"], ["uploadFrom", local, remote], ...]}'
"use strict";

const fs = require("fs");
const ftp = require("basic-ftp");

const STEPS = {
  list: (c, path) => c.list(path).then((items) => items.map((i) => ({
    name: i.name, size: i.size, type: i.isDirectory ? "dir" : i.isFile ? "file" : "other",
  }))),
  uploadFrom: (c, local, remote) => c.uploadFrom(local, remote).then((r) => r.code),
  downloadTo: (c, local, remote) => c.downloadTo(local, remote).then((r) => r.code),
  uploadFromDir: (c, local, remote) => c.uploadFromDir(local, remote).then(() => null),
  downloadToDir: (c, local, remote) => c.downloadToDir(local, remote).then(() => null),
  ensureDir: (c, remote) => c.ensureDir(remote).then(() => null),
  cd: (c, remote) => c.cd(remote).then((r) => r.code),
  rename: (c, from, to) => c.rename(from, to).then((r) => r.code),
  remove: (c, remote) => c.remove(remote).then((r) => r.code),
  size: (c, remote) => c.size(remote),
  pwd: (c) => c.pwd(),
};

async function main() {
  const spec = JSON.parse(process.argv[2]);
  const client = new ftp.Client(spec.timeout || 20000);
  const secureOptions = spec.ca ? { ca: fs.readFileSync(spec.ca) } : {};
  try {
    await client.access({
      host: spec.host, port: spec.port, user: spec.user, password: spec.password,
      secure: spec.secure, secureOptions,
    });
    for (const [i, [name, ...args]] of spec.steps.entries()) {
      const step = STEPS[name];
      if (step === undefined) throw new Error(`unknown step ${name}`);
      const result = await step(client, ...args);
      process.stdout.write(JSON.stringify({ step: i, name, result }) + "\n");
    }
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: String(err), code: err.code }) + "\n");
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

main();
