#!/usr/bin/env bash
# Installs fastgw (called by `make install`; every directory can be overridden):
#   binaries    $BINDIR            units            $UNITDIR
#   man pages   $MANDIR/man{5,8}   sysusers.d/tmpfiles.d snippets
#   example configs into $SYSCONFDIR/fastgw, never over an existing file; tls/ and tokens/
#   beside them (the units load the secrets there as systemd credentials)
# With DESTDIR empty, as root, on a host booted with systemd, it then creates the fastgw
# user and /run/fastgw and reloads systemd, as a Debian package's postinst would.
# `scripts/install.sh uninstall` removes what install put there, except configurations.
set -euo pipefail
: "${PREFIX:=/usr/local}" "${DESTDIR:=}" "${BUILD_DIR:=.build/release}"
: "${BINDIR:=$PREFIX/bin}" "${MANDIR:=$PREFIX/share/man}" "${SYSCONFDIR:=/etc}"
: "${UNITDIR:=$PREFIX/lib/systemd/system}" "${SYSUSERSDIR:=$PREFIX/lib/sysusers.d}"
: "${TMPFILESDIR:=$PREFIX/lib/tmpfiles.d}"
cd "$(dirname "$0")/.."

units=(fastgw.socket fastgw.service fastgw-agent.socket fastgw-agent.service fastgw-visitor.socket fastgw-visitor.service)
files=("$BINDIR/fastgw" "$BINDIR/fastgwctl" "$MANDIR/man8/fastgw.8" "$MANDIR/man8/fastgwctl.8"
       "$MANDIR/man5/fastgw.toml.5" "$SYSUSERSDIR/fastgw.conf" "$TMPFILESDIR/fastgw.conf")
for u in "${units[@]}"; do files+=("$UNITDIR/$u"); done

if [ "${1:-install}" = uninstall ]; then
    for f in "${files[@]}"; do rm -f "$DESTDIR$f"; done
    echo "fastgw uninstalled from $DESTDIR$PREFIX (configurations in $SYSCONFDIR/fastgw kept)"
    exit 0
fi

for b in fastgw fastgwctl; do
    [ -x "$BUILD_DIR/$b" ] || { echo "install: $BUILD_DIR/$b is missing; run make release first" >&2; exit 1; }
done
install -d "$DESTDIR$BINDIR" "$DESTDIR$MANDIR/man5" "$DESTDIR$MANDIR/man8" "$DESTDIR$UNITDIR" \
    "$DESTDIR$SYSUSERSDIR" "$DESTDIR$TMPFILESDIR"
install -m 0755 "$BUILD_DIR/fastgw" "$BUILD_DIR/fastgwctl" "$DESTDIR$BINDIR/"
install -m 0644 man/fastgw.8 man/fastgwctl.8 "$DESTDIR$MANDIR/man8/"
install -m 0644 man/fastgw.toml.5 "$DESTDIR$MANDIR/man5/"
# The units name /usr/bin and /etc/fastgw; point them where this install puts things.
for u in "${units[@]}"; do
    sed -e "s|/usr/bin/|$BINDIR/|g" -e "s|/etc/fastgw/|$SYSCONFDIR/fastgw/|g" "systemd/$u" > "$DESTDIR$UNITDIR/$u"
    chmod 0644 "$DESTDIR$UNITDIR/$u"
done
install -m 0644 systemd/fastgw.sysusers "$DESTDIR$SYSUSERSDIR/fastgw.conf"
sed -e "s|/etc/fastgw|$SYSCONFDIR/fastgw|g" systemd/fastgw.tmpfiles > "$DESTDIR$TMPFILESDIR/fastgw.conf"
chmod 0644 "$DESTDIR$TMPFILESDIR/fastgw.conf"

install -d -m 0750 "$DESTDIR$SYSCONFDIR/fastgw" "$DESTDIR$SYSCONFDIR/fastgw/tls"
# Root's only: fastgw.service loads every file here as a credential (LoadCredential=tokens:…),
# and the unit does not start without the directory.
install -d -m 0700 "$DESTDIR$SYSCONFDIR/fastgw/tokens"
for c in gateway.toml agent.toml visitor.toml; do
    if [ -e "$DESTDIR$SYSCONFDIR/fastgw/$c" ]; then
        echo "install: keeping $DESTDIR$SYSCONFDIR/fastgw/$c (the example is $PWD/examples/$c)"
    else
        install -m 0640 "examples/$c" "$DESTDIR$SYSCONFDIR/fastgw/$c"
    fi
done

if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && [ -d /run/systemd/system ]; then
    systemd-sysusers "$SYSUSERSDIR/fastgw.conf"
    systemd-tmpfiles --create "$TMPFILESDIR/fastgw.conf"
    chgrp fastgw "$SYSCONFDIR/fastgw" "$SYSCONFDIR/fastgw/tls" "$SYSCONFDIR/fastgw/"*.toml 2>/dev/null || true
    systemctl daemon-reload
fi
# The units load these with LoadCredential=; a missing source stops the unit before fastgw
# runs (243/CREDENTIALS), which after an upgrade from plain key paths would be a surprise.
for src in tls/gateway.key agent.token; do
    [ -e "$DESTDIR$SYSCONFDIR/fastgw/$src" ] || echo "install: note: $SYSCONFDIR/fastgw/$src is missing;" \
        "$( [ "$src" = agent.token ] && echo fastgw-agent.service || echo fastgw.service ) loads it with LoadCredential=" \
        "and will not start without it (or override the line in a drop-in, fastgw(8) SECRETS)"
done
echo "fastgw installed under $DESTDIR$PREFIX; edit $SYSCONFDIR/fastgw/*.toml, then: systemctl enable --now fastgw.socket (gateway) or fastgw-agent.service (agent)"
