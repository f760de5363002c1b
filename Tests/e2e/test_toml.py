"""TOML 1.0 as the daemons read it (issue #19): a file with a byte order mark, CRLF line
breaks, dotted keys, underscores and hex serves traffic; date-times and numbers TOML refuses
are errors with file:line from `fastgw check` and from a reload, which keeps the old config."""
import subprocess

from conftest import BIN, echo_roundtrip

BOM = b"\xef\xbb\xbf"


def check(path):
    r = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def windows_style(text):
    """The file as a Windows editor may save it: BOM first, CRLF line breaks."""
    return BOM + text.replace("\n", "\r\n").encode()


def test_bom_crlf_and_toml_forms_serve_traffic(tunnel, peer):
    t = tunnel(peer("echo").port)
    gw = (t.dir / "gateway.toml").read_text()
    gw = gw.replace('[control]\nsocket = "gateway.sock"\n', "")
    gw = ('# written 2026-11-28T02:25:00Z\ncontrol.socket = "gateway.sock"  # a dotted key\n' + gw
          + "[limits]\nmax_connections = 1_000\nmax_connections_per_ip = 0x40\n")
    (t.dir / "gateway.toml").write_bytes(windows_style(gw))
    (t.dir / "agent.toml").write_bytes(windows_style((t.dir / "agent.toml").read_text()))
    for f in ("gateway.toml", "agent.toml"):
        code, out = check(t.dir / f)
        assert code == 0 and "configuration OK" in out, out
    t.start_gateway()
    t.start_agent()
    echo_roundtrip(t.public_port, 1 << 20)


def test_what_toml_refuses_is_an_error_with_file_and_line(tunnel, peer):
    t = tunnel(peer("echo").port)
    good = (t.dir / "gateway.toml").read_text()
    bad = t.dir / "bad.toml"
    cases = [
        ('drain_timeout = "5s"', "drain_timeout = 00:00:05",
         "drain_timeout must be a string, not the local time 00:00:05 (quote it to make it a string)"),
        ('drain_timeout = "5s"', 'drain_timeout = "5s"\nstartup_wait = 1979-05-27T07:32:00Z',
         "startup_wait must be a string, not the offset date-time 1979-05-27T07:32:00Z"),
        ('keepalive_interval = "2s"', "keepalive_interval = --99",
         "TOML syntax: invalid number --99: a number takes at most one sign"),
        ('keepalive_interval = "2s"', "keepalive_interval = 1__2",
         "TOML syntax: invalid number 1__2: underscores must sit between digits"),
        ('keepalive_interval = "2s"', "keepalive_interval = .5",
         "TOML syntax: invalid number .5: a float needs a digit before the point (write 0.5, not .5)"),
        ('keepalive_interval = "2s"', 'keepalive_interval = "2s" # \x7f',
         "TOML syntax: control character U+007F in a comment"),
        ('keepalive_interval = "2s"', "keepalive_interval = 2006-02-30",
         "TOML syntax: day 30 does not exist in month 2 of 2006"),
        # Quoting would not help a key that takes integers, so the error does not suggest it.
        ("allow_ports = [", "allow_ports = 2026-01-01 #[",
         "agent \"test\": allow_ports must be an array of integers, not the local date 2026-01-01\n"),
        # TOML allows CR in a multi-line string only as part of CRLF.
        ('drain_timeout = "5s"', 'drain_timeout = """5s\r"""',
         "TOML syntax: control character U+000D in a string"),
    ]
    for old, new, message in cases:
        text = good.replace(old, new, 1)
        bad.write_text(text)
        line = text[:text.index(new.splitlines()[-1])].count("\n") + 1
        code, out = check(bad)
        assert code == 1 and f"{bad}:{line}: {message}" in out, (new, out)

    # An array the file never closes is reported on the line it opened on, not the last one.
    bad.write_text(good + "[limits]\nmax_connections = [\n  1,\n  2,\n")
    line = good.count("\n") + 2
    code, out = check(bad)
    assert code == 1 and f"{bad}:{line}: TOML syntax: unterminated array (the file ends before its ])" in out, out

    # A running gateway refuses the same file at reload, with the line, and keeps serving.
    t.start_gateway()
    t.start_agent()
    (t.dir / "gateway.toml").write_text(good.replace('drain_timeout = "5s"', "drain_timeout = 00:00:05", 1))
    line = good[:good.index('drain_timeout = "5s"')].count("\n") + 1
    r = t.ctl("reload", check=False)
    assert r.returncode != 0, r.stdout
    assert f"gateway.toml:{line}: drain_timeout must be a string, not the local time 00:00:05" in r.stdout + r.stderr, r
    echo_roundtrip(t.public_port, 1 << 20)
