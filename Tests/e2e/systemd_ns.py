"""A real systemd (with journald) booted in its own PID and mount namespaces, for the
operator-level suite (test_systemd.py).

The namespace shares the host's files, so everything it could change is covered first:
tmpfs over /tmp, /var/tmp and /run (systemd's boot-time cleanup would otherwise empty the
host's), and overlays over /etc, /usr/local, /var/lib and /var/log whose upper layers live in
a directory under /srv that is removed afterwards. What gets installed inside (units, the
fastgw user, binaries under /usr/local) never reaches the host. The network namespace is the
host's: test traffic stays on loopback.
"""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

OVERLAID = ("/etc", "/usr/local", "/var/lib", "/var/log")
SYSTEMD = "/lib/systemd/systemd"


class CannotBoot(Exception):
    pass


class NamespacedSystemd:
    def __init__(self, root: Path, shared: dict):
        """`root`: a fresh directory under /srv. `shared`: host path → path under `root`
        bind-mounted before /tmp is covered, so the namespace sees it (e.g. the repository)."""
        self.root = Path(root)
        self.shared = shared
        self.proc = None
        self.pid = None

    def boot(self, timeout=60):
        if os.geteuid() != 0:
            raise CannotBoot("needs root")
        if not os.path.exists(SYSTEMD) or not shutil.which("unshare") or not shutil.which("nsenter"):
            raise CannotBoot(f"needs {SYSTEMD}, unshare and nsenter")
        lines = ["set -e"]
        for host, inside in self.shared.items():
            target = self.root / inside
            target.mkdir(parents=True, exist_ok=True)
            lines.append(f"mount --bind '{host}' '{target}'")
        for d in OVERLAID:
            name = d.strip("/").replace("/", "-")
            upper, work = self.root / "upper" / name, self.root / "work" / name
            upper.mkdir(parents=True)
            work.mkdir(parents=True)
            lines.append(f"mount -t overlay overlay -o lowerdir={d},upperdir={upper},workdir={work} {d}")
        lines += [f"mount -t tmpfs tmpfs {d}" for d in ("/tmp", "/var/tmp", "/run")]
        # Shared within this namespace only (its mounts were copied private from the host): what
        # systemd does itself when booted by the kernel, and what LoadCredential= needs, since
        # systemd mounts a unit's credentials in a child namespace and they reach
        # /run/credentials by propagation.
        lines.append("mount --make-rshared /")
        lines.append(f"exec {SYSTEMD} --system --unit=basic.target")
        self.log = open(self.root / "systemd.log", "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--fork", "--pid", "--mount", "--propagation", "private", "--mount-proc",
             "sh", "-c", "\n".join(lines)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CannotBoot(f"systemd exited ({self.proc.returncode}): {self.boot_log()}")
            self.pid = self.pid or self._child()
            if self.pid:
                state = self.run("systemctl", "is-system-running", check=False, timeout=10).stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.3)
        raise CannotBoot(f"systemd did not reach basic.target in {timeout}s: {self.boot_log()}")

    def boot_log(self):
        return (self.root / "systemd.log").read_text(errors="replace")[-2000:]

    def _child(self):
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def run(self, *args, check=True, timeout=60, input=None, env=None):
        """Runs a command inside the namespaces (as root, in the host's network)."""
        cmd = ["nsenter", "-t", str(self.pid), "-m", "-p", "--"] + [str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input, env=env)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args))} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def systemctl(self, *args, check=True, timeout=90):
        return self.run("systemctl", *args, check=check, timeout=timeout)

    def write(self, path, text, mode=0o644, owner=None):
        """Writes a file inside the namespace (the overlays are not visible from outside)."""
        self.run("install", "-D", "-m", oct(mode)[2:], *(["-o", owner[0], "-g", owner[1]] if owner else []),
                 "/dev/stdin", path, input=text)

    def main_pid(self, unit):
        """The unit's main process, as a pid inside the namespace (0 when not running)."""
        return int(self.systemctl("show", "-P", "MainPID", unit).stdout.strip() or 0)

    def journal(self, unit):
        """The unit's journal records as dicts (`journalctl -o json`)."""
        r = self.run("journalctl", "--no-pager", "-o", "json", "-u", unit, check=False)
        return [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]

    def poweroff(self, timeout=60):
        if self.proc is None:
            return
        if self.proc.poll() is None and self.pid:
            self.run("systemctl", "poweroff", check=False, timeout=30)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Only what this harness started: the namespace's PID 1, by its pid.
                os.kill(self.pid, 9)
                self.proc.wait(timeout=30)
        self.log.close()
        self.proc = None
