"""Tokens at rest (issue #15 item 2): a gateway that holds only the SHA-256 of each agent's
token (`token_sha256`), and `fastgw token new`, which makes both halves."""
import hashlib
import re
import subprocess

from conftest import BIN, echo_roundtrip


def token_new():
    r = subprocess.run([BIN, "token", "new"], capture_output=True, text=True, check=True)
    token, line = r.stdout.splitlines()
    assert re.fullmatch(r"[0-9a-f]{64}", token), token
    assert line == f'token_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"', line
    return token, line


def hold_only_hash(t, line):
    """Replaces the test agent's token_file in gateway.toml with its hash line."""
    gw = (t.dir / "gateway.toml").read_text()
    (t.dir / "gateway.toml").write_text(gw.replace('token_file = "gateway.token"', line, 1))


def test_gateway_holding_only_the_hash_takes_the_agent(tunnel, peer):
    token, line = token_new()
    t = tunnel(peer("echo").port, agent_token=token)
    hold_only_hash(t, line)
    (t.dir / "gateway.token").unlink()
    assert token not in (t.dir / "gateway.toml").read_text()
    r = subprocess.run([BIN, "check", "-c", t.dir / "gateway.toml"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    t.start_gateway()
    t.start_agent()
    echo_roundtrip(t.public_port, 1 << 20)
    assert token not in t.gateway.text()

    # A new hash for the agent (its token was rotated) closes its connections at reload; the
    # agent with the old token is then refused.
    _, other = token_new()
    (t.dir / "gateway.toml").write_text((t.dir / "gateway.toml").read_text().replace(line, other))
    t.ctl("reload")
    t.gateway.wait_for("token of agent")
    t.agent.wait_for("401 invalid token")


def test_hash_line_errors_name_their_line(tunnel, peer):
    t = tunnel(peer("echo").port)
    hold_only_hash(t, 'token_sha256 = "not-a-hash"')
    r = subprocess.run([BIN, "check", "-c", t.dir / "gateway.toml"], capture_output=True, text=True)
    assert r.returncode == 1
    assert re.search(r"gateway\.toml:\d+: .*token_sha256 must be 64 hex digits", r.stderr), r.stderr
