"""Mutual TLS on the tunnel (issue #15 item 1): agents proven by a client certificate, alone
or with their token; every refusal reason reaches both the agent's log (the 401/403 body) and
the gateway's; a CRL reloaded with `fastgwctl reload` closes the connections of a revoked
agent. Certificates are made with openssl at test time (`openssl ca`, so that they can be
revoked and listed in a CRL)."""
import re
import socket
import ssl
import subprocess

import pytest

from conftest import BIN, echo_roundtrip

CA_CONF = """
[ca]
default_ca = agents
[agents]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/agents-ca.crt
private_key = $dir/agents-ca.key
default_md = sha256
default_days = 30
default_crl_days = 30
policy = any
unique_subject = no
[any]
commonName = supplied
"""

GOOD_SAN = "DNS:agent.test,URI:spiffe://fastgw.test/agent/test"


def openssl(*args, cwd):
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def new_key_and_csr(d, name, cn):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)


def client_ext(d, name, san):
    (d / f"{name}.ext").write_text(f"basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                                   f"extendedKeyUsage=clientAuth\nsubjectAltName={san}\n")
    return f"{name}.ext"


def issue(d, name, cn, san=GOOD_SAN, dates=()):
    """A client certificate from the agents' CA (recorded in its database)."""
    new_key_and_csr(d, name, cn)
    openssl("ca", "-batch", "-config", "ca.cnf", "-notext", "-in", f"{name}.csr", "-out", f"{name}.crt",
            "-extfile", client_ext(d, name, san), *dates, cwd=d)


def gencrl(d, out="agents.crl"):
    openssl("ca", "-batch", "-config", "ca.cnf", "-gencrl", "-out", out, cwd=d)


def fingerprint(d, name):
    r = subprocess.run(["openssl", "x509", "-in", d / f"{name}.crt", "-noout", "-fingerprint", "-sha256"],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip().split("=", 1)[1]


@pytest.fixture(scope="module")
def agents_pki(tmp_path_factory):
    """The agents' CA with good, expired, revoked, wrong-subject certificates, one from
    another CA, and a CRL listing the revoked one (`revoked.crl`) next to an empty one and one
    past its next update (`stale.crl`)."""
    d = tmp_path_factory.mktemp("agents-pki")
    (d / "issued").mkdir()
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    (d / "crlnumber").write_text("1000\n")
    (d / "ca.cnf").write_text(CA_CONF.format(dir=d))
    for ca in ("agents-ca", "wrong-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
                "-subj", f"/CN={ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.crt", cwd=d)
    issue(d, "good", "test")
    issue(d, "other", "test")  # revoked later, by the reload test
    issue(d, "subject", "intruder", san="DNS:intruder.test")
    issue(d, "expired", "test", dates=("-startdate", "20200101000000Z", "-enddate", "20200201000000Z"))
    issue(d, "revoked", "test")
    gencrl(d, "empty.crl")
    openssl("ca", "-batch", "-config", "ca.cnf", "-revoke", "revoked.crt", cwd=d)
    gencrl(d, "revoked.crl")
    openssl("ca", "-batch", "-config", "ca.cnf", "-gencrl", "-crl_lastupdate", "20200101000000Z",
            "-crl_nextupdate", "20200201000000Z", "-out", "stale.crl", cwd=d)
    new_key_and_csr(d, "foreign", "test")
    openssl("x509", "-req", "-in", "foreign.csr", "-CA", "wrong-ca.crt", "-CAkey", "wrong-ca.key", "-CAcreateserial",
            "-days", "30", "-extfile", client_ext(d, "foreign", GOOD_SAN), "-out", "foreign.crt", cwd=d)
    return d


def secure(t, pki, agent_cert=None, auth="certificate", match='certificate_subject = "agent.test"',
           crl="revoked.crl", agent_token=None):
    """Rewrites the tunnel's configs: the gateway trusts the agents' CA (with `crl`) and
    authenticates agent "test" by `auth` and `match`; the agent presents `agent_cert` (none
    when None) and, with `agent_token` False, no token."""
    files = ["agents-ca.crt"] + ([f"{agent_cert}.crt", f"{agent_cert}.key"] if agent_cert else [])
    for f in files:
        (t.dir / f).write_bytes((pki / f).read_bytes())
    (t.dir / "agents.crl").write_bytes((pki / crl).read_bytes())
    gw = (t.dir / "gateway.toml").read_text()
    gw = gw.replace("[tunnel]\n", '[tunnel]\nclient_ca = "agents-ca.crt"\nclient_crl = "agents.crl"\n', 1)
    credentials = f'auth = "{auth}"\n{match}\n'
    if auth != "certificate":
        credentials += 'token_file = "gateway.token"\n'
    (t.dir / "gateway.toml").write_text(gw.replace('token_file = "gateway.token"\n', credentials, 1))
    agent = (t.dir / "agent.toml").read_text()
    if agent_cert:
        agent = agent.replace('ca = "ca.crt"\n', f'ca = "ca.crt"\ncert = "{agent_cert}.crt"\nkey = "{agent_cert}.key"\n')
    if agent_token is False:
        agent = agent.replace('token_file = "agent.token"\n', "")
    (t.dir / "agent.toml").write_text(agent)


def check(path):
    return subprocess.run([BIN, "check", "-c", path], capture_output=True, text=True)


def logged(pattern):
    """`pattern` as it appears in a logfmt value, where quotes are escaped."""
    return pattern.replace('"', r'\\?"')


def refused(t, status, pattern, code):
    """The agent logs the gateway's reason; the gateway logs it with the reason code."""
    t.agent.wait_for(logged(rf"gateway refused the tunnel: {status} {pattern}"))
    t.gateway.wait_for(rf"tunnel connection refused: client certificate.*certificate={code}")
    stats = t.ctl_json("stats")
    assert stats["certificates_refused_total"][code] >= 1, stats["certificates_refused_total"]


def test_a_certificate_alone_authenticates_the_agent(tunnel, peer, agents_pki):
    t = tunnel(peer("echo").port)
    secure(t, agents_pki, agent_cert="good", agent_token=False)
    assert "token" not in (t.dir / "agent.toml").read_text()
    for f in ("gateway.toml", "agent.toml"):
        r = check(t.dir / f)
        assert r.returncode == 0, r.stderr
    t.start_gateway()
    t.start_agent()
    echo_roundtrip(t.public_port, 1 << 20)
    assert t.ctl_json("stats")["certificates_refused_total"] == {}
    # `agents` shows what each connection presented: what a pin or a subject is written from.
    conns = t.ctl_json("agents")["agents"][0]["connections"]
    pin = fingerprint(agents_pki, "good").replace(":", "").lower()
    assert [c["certificate"] for c in conns] == [{
        "sha256": pin, "common_names": ["test"], "dns_names": ["agent.test"],
        "uris": ["spiffe://fastgw.test/agent/test"]}] * t.connections, conns

    # A grant that no longer names the certificate closes its connections at reload.
    gw = (t.dir / "gateway.toml").read_text()
    (t.dir / "gateway.toml").write_text(gw.replace('certificate_subject = "agent.test"', 'certificate_subject = "nas.test"'))
    assert f"{t.connections} agent connections closed" in t.ctl("reload").stdout
    t.gateway.wait_for(logged(r'closing agent connection after reload.*does not name agent "test"'), count=t.connections)


@pytest.mark.parametrize("cert,status,reason,code", [
    (None, 401, r'agent "test" must present a client certificate; none was sent', "no_certificate"),
    ("foreign", 401, r'client certificate of agent "test" is not issued by a CA the gateway trusts', "unknown_ca"),
    ("expired", 401, r'client certificate of agent "test" has expired', "expired"),
    ("revoked", 401, r'client certificate of agent "test" is revoked', "revoked"),
    ("subject", 403, r'client certificate \(CN=intruder, DNS:intruder.test\) does not name agent "test"', "subject_mismatch"),
])
def test_each_refusal_says_why_to_the_agent_and_in_the_gateway_log(tunnel, peer, agents_pki, cert, status, reason, code):
    t = tunnel(peer("echo").port)
    # The agent keeps its token, so that only the certificate can be what is refused.
    secure(t, agents_pki, agent_cert=cert)
    t.start_gateway()
    t.start_agent(wait=False)
    refused(t, status, reason, code)
    assert t.gateway.count("agent connected") == 0


def test_an_out_of_date_crl_refuses_even_a_good_certificate(tunnel, peer, agents_pki):
    # Fail closed: a CRL past its next update can no longer say what is revoked.
    t = tunnel(peer("echo").port)
    secure(t, agents_pki, agent_cert="good", agent_token=False, crl="stale.crl")
    t.start_gateway()
    t.start_agent(wait=False)
    refused(t, 401, r'client certificate of agent "test" is not accepted: the CRL of its issuer in client_crl is out of date',
            "invalid")


def test_token_and_certificate_needs_both(tunnel, peer, agents_pki):
    t = tunnel(peer("echo").port)
    secure(t, agents_pki, agent_cert="good", auth="token+certificate")
    t.start_gateway()
    t.start_agent()
    echo_roundtrip(t.public_port, 1 << 20)
    t.agent.kill()
    agent = (t.dir / "agent.toml").read_text()

    # The certificate without the right token.
    token = (t.dir / "agent.token").read_text()
    (t.dir / "agent.token").write_text("0123456789abcdef0123456789abcdef\n")
    t.start_agent(wait=False)
    t.agent.wait_for(logged(r'gateway refused the tunnel: 401 invalid token for agent "test"'))
    t.agent.kill()

    # The token without the certificate.
    (t.dir / "agent.token").write_text(token)
    (t.dir / "agent.toml").write_text(agent.replace('cert = "good.crt"\nkey = "good.key"\n', ""))
    t.start_agent(wait=False)
    refused(t, 401, r'agent "test" must present a client certificate', "no_certificate")


def test_a_pinned_certificate_is_taken(tunnel, peer, agents_pki):
    t = tunnel(peer("echo").port)
    secure(t, agents_pki, agent_cert="good", agent_token=False,
           match=f'certificate_sha256 = "{fingerprint(agents_pki, "good")}"')
    t.start_gateway()
    t.start_agent()
    echo_roundtrip(t.public_port, 1 << 20)


def test_another_certificate_than_the_pinned_one_is_refused(tunnel, peer, agents_pki):
    # Same CA, same names: only the pin tells them apart.
    t = tunnel(peer("echo").port)
    secure(t, agents_pki, agent_cert="other", agent_token=False,
           match=f'certificate_sha256 = "{fingerprint(agents_pki, "good").replace(":", "").lower()}"')
    t.start_gateway()
    t.start_agent(wait=False)
    presented = fingerprint(agents_pki, "other").replace(":", "").lower()
    refused(t, 403, rf'client certificate of agent "test" does not match its certificate_sha256 pin \(presented sha256 {presented}\)',
            "pin_mismatch")


def test_a_reloaded_crl_closes_the_revoked_agents_connections(tunnel, peer, agents_pki, tmp_path):
    # A CA of this test's own, so that revoking does not touch the module's certificates.
    pki = tmp_path / "own-pki"
    subprocess.run(["cp", "-r", agents_pki, pki], check=True)
    (pki / "ca.cnf").write_text(CA_CONF.format(dir=pki))
    # A second agent, by token, is not touched by the new CRL.
    t = tunnel(peer("echo").port, extra_agents=("second",))
    secure(t, pki, agent_cert="other", agent_token=False, crl="empty.crl")
    t.start_gateway()
    t.start_agent()
    t.start_extra("second")
    echo_roundtrip(t.public_port, 1 << 20)
    assert t.agent.count("gateway refused") == 0

    # A CRL file that does not load fails the reload, naming its line; the old one stays.
    (t.dir / "agents.crl").write_text("-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n")
    r = t.ctl("reload", check=False)
    assert r.returncode == 1 and re.search(r"gateway\.toml:\d+: cannot load client_crl .*\(422\)", r.stderr), r
    echo_roundtrip(t.public_port, 1 << 20)

    openssl("ca", "-batch", "-config", "ca.cnf", "-revoke", "other.crt", cwd=pki)
    gencrl(pki)
    (t.dir / "agents.crl").write_bytes((pki / "agents.crl").read_bytes())
    r = t.ctl("reload")
    assert f"{t.connections} agent connections closed" in r.stdout, r.stdout
    t.gateway.wait_for(logged(r'closing agent connection after reload.*client certificate of agent "test" is revoked'),
                       count=t.connections)
    t.agent.wait_for(logged(r'gateway refused the tunnel: 401 client certificate of agent "test" is revoked'),
                     count=t.connections, timeout=15)
    agents = t.ctl_json("agents")["agents"]
    assert [(a["name"], len(a["connections"])) for a in agents] == [("second", t.connections)], agents
    echo_roundtrip(t.public_port, 1 << 20)


def present(t, pki, cert, source="127.0.0.2"):
    """One handshake from `source` as agent "test", without token, presenting `cert`: the
    answer's status, or 'reset' when the connection is refused at accept."""
    ctx = ssl.create_default_context(cafile=str(t.dir / "ca.crt"))
    ctx.load_cert_chain(pki / f"{cert}.crt", pki / f"{cert}.key")
    try:
        raw = socket.socket()
        raw.settimeout(5)
        raw.bind((source, 0))
        raw.connect(("127.0.0.1", t.tunnel_port))
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /.fastgw/v1/tunnel HTTP/1.1\r\nHost: localhost\r\nFastgw-Agent: test\r\n"
                      b"Connection: Upgrade\r\nUpgrade: fastgw-h2\r\n\r\n")
            return s.recv(4096).split(b" ", 2)[1].decode()
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError, IndexError):
        return "reset"


def test_refused_certificates_count_against_the_address(tunnel, peer, agents_pki):
    t = tunnel(peer("echo").port)
    secure(t, agents_pki, agent_cert="good", agent_token=False)
    t.start_gateway()
    answers = [present(t, agents_pki, c) for c in ("foreign", "expired", "subject", "revoked", "foreign", "good")]
    assert answers == ["401", "401", "403", "401", "401", "reset"], answers
    # Another address, and the real agent, are not affected.
    assert present(t, agents_pki, "good", source="127.0.0.3") == "101"
    t.start_agent()
    echo_roundtrip(t.public_port, 1 << 20)
    stats = t.ctl_json("stats")
    assert stats["addresses_blocked_total"] == 1
    assert stats["certificates_refused_total"] == {
        "unknown_ca": 2, "expired": 1, "subject_mismatch": 1, "revoked": 1}, stats["certificates_refused_total"]


def agent_error(t, text):
    (t.dir / "gateway.toml").write_text((t.dir / "gateway.toml").read_text().replace(
        'auth = "certificate"\ncertificate_subject = "agent.test"\n', text, 1))
    r = check(t.dir / "gateway.toml")
    assert r.returncode == 1, r.stdout
    return r.stderr


def test_check_reports_bad_combinations_with_their_line(tunnel, peer, agents_pki):
    t = tunnel(peer("echo").port)
    secure(t, agents_pki, agent_cert="good", agent_token=False)
    gw = (t.dir / "gateway.toml").read_text()
    line = lambda key: gw[:gw.index(key)].count("\n") + 1  # noqa: E731

    auth = line('auth = "certificate"')
    cases = [  # text in place of the agent's auth lines, the line of the error in it, message
        ('auth = "certificate"\n', 0, r"needs certificate_subject .* or certificate_sha256"),
        ('auth = "certificate"\ncertificate_subject = "a"\ncertificate_sha256 = "' + "ab" * 32 + '"\n', 2,
         r"set one of certificate_subject and certificate_sha256"),
        ('auth = "certificate"\ncertificate_sha256 = "abc"\n', 1, r"certificate_sha256 must be 64 hex digits"),
        ('auth = "token"\ncertificate_subject = "agent.test"\ntoken = "0123456789abcdef0123"\n', 1,
         r'certificate_subject applies to auth = "certificate" or "token\+certificate"'),
        ('auth = "certificate"\ncertificate_subject = "agent.test"\ntoken = "0123456789abcdef0123"\n', 2,
         r'token is not used with auth = "certificate"'),
        ('auth = "password"\n', 0, r'auth "password" is not one of: token, certificate, token\+certificate'),
        # A missing key is reported on the line of its [[agent]].
        ('auth = "token+certificate"\ncertificate_subject = "agent.test"\n', line("[[agent]]") - auth,
         r"token or token_file is required"),
    ]
    for text, offset, message in cases:
        (t.dir / "gateway.toml").write_text(gw)
        stderr = agent_error(t, text)
        assert re.search(rf'gateway\.toml:{auth + offset}: agent "test": .*{message}', stderr), (text, stderr)

    # Without client_ca a certificate cannot be checked; a CRL needs its CA too.
    (t.dir / "gateway.toml").write_text(gw.replace('client_ca = "agents-ca.crt"\n', ""))
    r = check(t.dir / "gateway.toml")
    assert re.search(rf'gateway\.toml:{line("client_crl") - 1}: .*client_crl needs client_ca', r.stderr), r.stderr
    assert re.search(r'gateway\.toml:\d+: agent "test": auth = "certificate" needs \[tunnel\] client_ca', r.stderr), r.stderr

    # Files that do not hold what they should are named, on the line that names them.
    (t.dir / "gateway.toml").write_text(gw)
    (t.dir / "agents.crl").write_text("not a CRL\n")
    r = check(t.dir / "gateway.toml")
    assert re.search(rf'gateway\.toml:{line("client_crl")}: cannot load client_crl .*agents\.crl', r.stderr), r.stderr
    (t.dir / "gateway.toml").write_text(gw.replace('client_ca = "agents-ca.crt"', 'client_ca = "missing.crt"'))
    r = check(t.dir / "gateway.toml")
    assert re.search(rf'gateway\.toml:{line("client_ca")}: cannot load client_ca .*missing\.crt', r.stderr), r.stderr

    # The agent's certificate and key: a key of another certificate is named with its line.
    agent = (t.dir / "agent.toml").read_text()
    (t.dir / "agent.toml").write_text(agent.replace('key = "good.key"', 'key = "wrong.key"'))
    (t.dir / "wrong.key").write_bytes((agents_pki / "subject.key").read_bytes())
    r = check(t.dir / "agent.toml")
    alines = agent[:agent.index('key = "good.key"')].count("\n") + 1
    assert re.search(rf"agent\.toml:{alines}: private key .*wrong\.key does not match certificate .*good\.crt", r.stderr), r.stderr
