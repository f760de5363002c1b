"""`fastgw check` validates either role's file like `nginx -t`: exit 0, or 1 with file:line."""
import subprocess

from conftest import BIN


def check(path):
    r = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def test_good_gateway_and_agent_files(tunnel):
    t = tunnel(1)
    code, out = check(t.dir / "gateway.toml")
    assert code == 0 and "gateway configuration OK" in out, out
    code, out = check(t.dir / "agent.toml")
    assert code == 0 and "agent configuration OK" in out, out


def test_bad_files_report_file_and_line(tunnel):
    t = tunnel(1)
    bad = t.dir / "bad.toml"
    bad.write_text('[tunnel]\ncert = "gateway.crt"\nkey = "gateway.key"\n\n[[agent]]\nname = "x"\n'
                   'token_file = "gateway.token"\nallow_ports = [70000]\n')
    code, out = check(bad)
    assert code == 1
    assert f"{bad}:8: agent \"x\": allow_ports: 70000 out of range (1-65535)" in out, out

    bad.write_text('[tunnel]\ncert = "missing.crt"\nkey = "gateway.key"\n[[agent]]\nname = "x"\ntoken_file = "gateway.token"\n')
    code, out = check(bad)
    assert code == 1 and f"{bad}:2: cannot load certificate" in out, out

    code, out = check(t.dir / "nonexistent.toml")
    assert code == 1 and "cannot read config: No such file or directory" in out, out
