"""Secrets from systemd credentials (issue #15 item 6), outside systemd: path values written
`credential:NAME` are read from $CREDENTIALS_DIRECTORY/NAME. The daemons refuse to start
without the variable; `fastgw check` notes what it could not check and exits 0, and checks the
files when the variable is set. (Under a real systemd with LoadCredential=: test_systemd.py.)"""
import os
import re
import subprocess

from conftest import BIN, Process, echo_roundtrip


def use_credentials(t):
    """Rewrites the tunnel's configs so that the gateway's TLS key, the gateway's copy of the
    token and the agent's token are credentials, each in its own directory (0400, as systemd
    leaves them); returns (gateway's directory, agent's directory)."""
    gw, ag = t.dir / "gw-creds", t.dir / "agent-creds"
    for d in (gw, ag):
        d.mkdir()
    (gw / "gw.key").write_bytes((t.dir / "gateway.key").read_bytes())
    (gw / "tokens_test").write_text((t.dir / "gateway.token").read_text())
    (ag / "agent.token").write_text((t.dir / "agent.token").read_text())
    for f in (gw / "gw.key", gw / "tokens_test", ag / "agent.token"):
        f.chmod(0o400)
    for f in ("gateway.key", "gateway.token", "agent.token"):
        (t.dir / f).unlink()
    gateway = (t.dir / "gateway.toml").read_text()
    gateway = gateway.replace('key = "gateway.key"', 'key = "credential:gw.key"')
    gateway = gateway.replace('token_file = "gateway.token"', 'token_file = "credential:tokens_test"')
    (t.dir / "gateway.toml").write_text(gateway)
    agent = (t.dir / "agent.toml").read_text().replace('token_file = "agent.token"', 'token_file = "credential:agent.token"')
    (t.dir / "agent.toml").write_text(agent)
    return gw, ag


def without_credentials():
    return {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}


def line_of(path, text):
    return next(i for i, l in enumerate(path.read_text().splitlines(), 1) if text in l)


def check(path, directory=None):
    env = without_credentials()
    if directory is not None:
        env["CREDENTIALS_DIRECTORY"] = str(directory)
    return subprocess.run([BIN, "check", "-c", path], capture_output=True, text=True, env=env)


def test_daemons_read_secrets_from_the_credentials_directory_and_again_at_reload(tunnel, peer):
    t = tunnel(peer("echo").port)
    gw, ag = use_credentials(t)
    t.start_gateway(env={"CREDENTIALS_DIRECTORY": str(gw)})
    t.start_agent(env={"CREDENTIALS_DIRECTORY": str(ag)})
    echo_roundtrip(t.public_port, 1 << 20)

    # A reload reads the credentials again: a new token for the agent in the gateway's
    # directory closes its connections, and its old token is then refused.
    (gw / "tokens_test").chmod(0o600)
    (gw / "tokens_test").write_text(os.urandom(16).hex() + "\n")
    t.ctl("reload")
    t.gateway.wait_for("token of agent")
    t.agent.wait_for("401 invalid token")


def test_daemons_without_the_directory_refuse_to_start_naming_key_line_and_unit(tunnel, tmp_path):
    t = tunnel(9)
    use_credentials(t)
    for role, config, key, name in (("gateway", "gateway.toml", "key", "gw.key"),
                                    ("agent", "agent.toml", "token_file", "agent.token")):
        path = t.dir / config
        r = subprocess.run([BIN, role, "-c", path], capture_output=True, text=True, env=without_credentials(), timeout=30)
        assert r.returncode == 1, r.stderr
        line = line_of(path, f'"credential:{name}"')
        assert re.search(
            rf'{re.escape(str(path))}:{line}: (agent "test": )?{key} "credential:{re.escape(name)}" is a systemd credential '
            rf"but \$CREDENTIALS_DIRECTORY is not set: run fastgw under systemd with LoadCredential={re.escape(name)}:",
            r.stderr), r.stderr
        assert "ready" not in r.stderr and "started" not in r.stderr


def test_missing_credential_file_is_a_startup_error(tunnel):
    t = tunnel(9)
    gw, _ = use_credentials(t)
    (gw / "gw.key").unlink()
    p = Process([BIN, "gateway", "-c", t.dir / "gateway.toml"], t.dir / "missing.log",
                env={"CREDENTIALS_DIRECTORY": str(gw)})
    assert p.proc.wait(timeout=30) == 1
    p.kill()
    line = line_of(t.dir / "gateway.toml", "credential:gw.key")
    assert (f'gateway.toml:{line}: key: credential "gw.key" cannot be read from $CREDENTIALS_DIRECTORY ({gw}/gw.key): '
            "No such file or directory; the unit needs LoadCredential=gw.key:") in p.text(), p.text()


def test_check_notes_credentials_outside_the_unit_and_checks_them_inside(tunnel):
    t = tunnel(9)
    gw, ag = use_credentials(t)
    gateway, agent = t.dir / "gateway.toml", t.dir / "agent.toml"

    # Outside the unit (no variable): the rest is validated, exit 0, a note per credential.
    r = check(gateway)
    assert r.returncode == 0, r.stderr
    assert "gateway configuration OK (1 agents, 1 TCP ports; 2 credentials not checked)" in r.stdout
    key_line, token_line = line_of(gateway, "credential:gw.key"), line_of(gateway, "credential:tokens_test")
    assert (f'{gateway}:{key_line}: note: key "credential:gw.key" not checked: $CREDENTIALS_DIRECTORY is not set'
            in r.stderr), r.stderr
    assert f'{gateway}:{token_line}: note: agent "test": token_file "credential:tokens_test" not checked' in r.stderr
    assert "systemd-run --pipe --wait -p LoadCredential=gw.key:/path/to/file -p LoadCredential=tokens_test:" in r.stderr
    r = check(agent)
    assert r.returncode == 0 and "1 credential not checked" in r.stdout, r.stdout + r.stderr

    # A real error elsewhere still fails, credentials or not.
    bad = t.dir / "bad.toml"
    bad.write_text(gateway.read_text().replace('cert = "gateway.crt"', 'cert = "missing.crt"'))
    r = check(bad)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{bad}:{line_of(bad, 'missing.crt')}: cannot read certificate {t.dir}/missing.crt: No such file or directory" in r.stderr
    r = check(bad, gw)
    assert r.returncode == 1 and f"{bad}:{line_of(bad, 'missing.crt')}: cannot load certificate" in r.stderr, r.stderr

    # Inside (the variable set): the files are checked, no notes.
    r = check(gateway, gw)
    assert r.returncode == 0 and r.stderr == "" and "not checked" not in r.stdout, r.stdout + r.stderr
    assert check(agent, ag).returncode == 0

    # A credential that is not there, or not a key, fails with its line.
    r = check(gateway, ag)
    assert r.returncode == 1
    assert f"{gateway}:{token_line}: agent \"test\": cannot read token_file {ag}/tokens_test" in r.stderr, r.stderr
    (gw / "gw.key").chmod(0o600)
    (gw / "gw.key").write_text("not a key\n")
    r = check(gateway, gw)
    assert r.returncode == 1 and f"{gateway}:{key_line}: cannot load private key {gw}/gw.key" in r.stderr, r.stderr


def test_credential_names_and_directory_are_validated(tunnel):
    t = tunnel(9)
    gw, _ = use_credentials(t)
    gateway = t.dir / "gateway.toml"
    for name, why in (("../gateway.key", 'a credential name is a file name in $CREDENTIALS_DIRECTORY and cannot contain "/"'), ("", "the credential name is empty"), ("..", '".." is not a credential name')):
        bad = t.dir / "bad.toml"
        bad.write_text(gateway.read_text().replace('"credential:gw.key"', f'"credential:{name}"'))
        for directory in (None, gw):
            r = check(bad, directory)
            assert r.returncode == 1, r.stdout
            assert f'{bad}:{line_of(bad, "credential:" + name + chr(34))}: key "credential:{name}": {why}' in r.stderr, r.stderr
    r = check(gateway, "relative/dir")
    assert r.returncode == 1 and '$CREDENTIALS_DIRECTORY "relative/dir" is not an absolute path' in r.stderr, r.stderr
    # A socket fastgw creates cannot be one.
    bad = t.dir / "bad.toml"
    bad.write_text(gateway.read_text().replace('socket = "gateway.sock"', 'socket = "credential:sock"'))
    r = check(bad, gw)
    assert r.returncode == 1 and "fastgw creates this file, so it cannot be a systemd credential" in r.stderr, r.stderr
