"""scripts/install.sh (what `make install` runs after the release build): honours PREFIX and
DESTDIR, points the units at the installed binaries, and never overwrites a configuration."""
import os
import subprocess

from conftest import BIN, ROOT


def install(destdir, prefix, *args):
    env = dict(os.environ, DESTDIR=str(destdir), PREFIX=prefix, BUILD_DIR=str(BIN.parent))
    return subprocess.run([ROOT / "scripts" / "install.sh", *args], env=env, capture_output=True, text=True, check=True)


def test_install_layout_units_and_kept_configs(tmp_path):
    dest = tmp_path / "root"
    install(dest, "/opt/fastgw")
    for f in ("opt/fastgw/bin/fastgw", "opt/fastgw/bin/fastgwctl", "opt/fastgw/share/man/man8/fastgw.8",
              "opt/fastgw/share/man/man8/fastgwctl.8", "opt/fastgw/share/man/man5/fastgw.toml.5",
              "opt/fastgw/lib/sysusers.d/fastgw.conf", "opt/fastgw/lib/tmpfiles.d/fastgw.conf",
              "etc/fastgw/gateway.toml", "etc/fastgw/agent.toml"):
        assert (dest / f).is_file(), f
    unit = (dest / "opt/fastgw/lib/systemd/system/fastgw.service").read_text()
    assert "ExecStart=/opt/fastgw/bin/fastgw gateway --config /etc/fastgw/gateway.toml" in unit
    assert "ExecReload=/opt/fastgw/bin/fastgwctl --socket /run/fastgw/gateway.sock reload" in unit
    assert os.access(dest / "opt/fastgw/bin/fastgw", os.X_OK)
    assert oct((dest / "etc/fastgw/gateway.toml").stat().st_mode & 0o777) == "0o640"
    # Secrets reach the daemons as systemd credentials: the units load them, the directory of
    # agent tokens exists (the unit needs it) and only root reads it.
    assert "LoadCredential=gateway.key:/etc/fastgw/tls/gateway.key" in unit
    assert "LoadCredential=tokens:/etc/fastgw/tokens" in unit
    agent_unit = (dest / "opt/fastgw/lib/systemd/system/fastgw-agent.service").read_text()
    assert "LoadCredential=agent.token:/etc/fastgw/agent.token" in agent_unit
    assert oct((dest / "etc/fastgw/tokens").stat().st_mode & 0o777) == "0o700"
    assert (dest / "etc/fastgw/tls").is_dir()
    tmpfiles = (dest / "opt/fastgw/lib/tmpfiles.d/fastgw.conf").read_text()
    assert "d /etc/fastgw/tokens 0700 root root -" in tmpfiles

    # An admin's configuration survives a second install; the secrets the units load are
    # named while they are missing, and no longer once they are there.
    (dest / "etc/fastgw/gateway.toml").write_text("# mine\n")
    (dest / "etc/fastgw/agent.token").write_text("t" * 32)
    out = install(dest, "/opt/fastgw").stdout
    assert "/etc/fastgw/tls/gateway.key is missing" in out and "fastgw.service loads it" in out, out
    assert "agent.token is missing" not in out, out
    assert (dest / "etc/fastgw/gateway.toml").read_text() == "# mine\n"
    assert "keeping" in out and "gateway.toml" in out

    # The example configurations are valid apart from the files they point at; their secrets
    # are credentials, which check outside the unit notes as not checked.
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    check = subprocess.run([BIN, "check", "--config", ROOT / "examples" / "agent.toml"], capture_output=True, text=True, env=env)
    assert check.returncode == 0 and "1 credential not checked" in check.stdout, check.stdout + check.stderr
    assert 'note: token_file "credential:agent.token" not checked' in check.stderr, check.stderr
    check = subprocess.run([BIN, "check", "--config", ROOT / "examples" / "gateway.toml"], capture_output=True, text=True, env=env)
    assert "cannot read certificate" in check.stderr and "tls/gateway.crt" in check.stderr, check.stderr

    install(dest, "/opt/fastgw", "uninstall")
    assert not (dest / "opt/fastgw/bin/fastgw").exists()
    assert not (dest / "opt/fastgw/lib/systemd/system/fastgw.socket").exists()
    assert (dest / "etc/fastgw/gateway.toml").read_text() == "# mine\n"


def test_man_pages_render_without_warnings():
    for page in ("fastgw.8", "fastgw.toml.5", "fastgwctl.8"):
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", ROOT / "man" / page], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr, f"{page}: {r.stderr}"
