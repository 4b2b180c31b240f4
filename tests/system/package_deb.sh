#!/bin/sh
# package_deb.sh - release packaging: `make dist` in a clone of HEAD makes
# spamd-tarpit-VERSION.tar.gz; the tarball builds a .deb with
# `dpkg-buildpackage -us -uc -b` (parallel=2 nocheck: one compile, no
# recursive test run); the .deb holds the four programs under /usr/sbin
# (the daemon as spamd-tarpit, never /usr/sbin/spamd: SpamAssassin's),
# the manuals, the examples and spamd-tarpit.service pointing at
# /usr/sbin, installed disabled; its postinst creates _spamd, /var/empty
# and /var/db/spamd (0750, _spamd's). Nothing is installed on this machine, and the
# repository is not touched (everything happens under a temp dir).
# Then the .deb is installed into a scratch root and the daemon run under
# the installed unit's restrictions, greylisting through the installed
# ruleset, across an nftables restart (tests/system/lib/deploy_unit.py).
# SPAMD_PKG_WORKTREE=1 packages the working tree instead of HEAD.
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
for t in git dpkg-buildpackage dpkg-deb dh fakeroot; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "skip - package_deb: $t not installed (make deps)"; exit 0
	fi
done

TMP=$(mktemp -d /tmp/package_deb.XXXXXX)
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
failed=0
ok() { echo "ok - $1"; }
nok() { echo "not ok - $1: $2"; failed=1; }

VERSION=$(cat "$TOP/VERSION" 2>/dev/null)
[ -n "$VERSION" ] || { nok "package_deb version" "no VERSION file"; exit 1; }

# A clone of the commit under test: make dist runs git archive in it.
git clone -q "$TOP" "$TMP/clone" 2>"$TMP/clone.err" ||
	{ nok "package_deb clone" "$(head -c 300 "$TMP/clone.err")"; exit 1; }
if [ "${SPAMD_PKG_WORKTREE:-0}" = 1 ]; then
	# Tracked and new files as they are now, committed in the clone only.
	(cd "$TOP" && git ls-files -co --exclude-standard -z |
	    xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$TMP/clone"
	git -C "$TMP/clone" add -A >/dev/null 2>&1
	git -C "$TMP/clone" -c user.name=t -c user.email=t@t commit -qm wt \
	    >/dev/null 2>&1
fi
if make -C "$TMP/clone" dist >"$TMP/dist.log" 2>&1 &&
    [ -f "$TMP/clone/spamd-tarpit-$VERSION.tar.gz" ]; then
	ok "package_deb make dist makes spamd-tarpit-$VERSION.tar.gz"
else
	nok "package_deb make dist" "$(tail -c 300 "$TMP/dist.log")"; exit 1
fi
tar -tzf "$TMP/clone/spamd-tarpit-$VERSION.tar.gz" >"$TMP/dist.list"
missing=""
for f in VERSION Makefile debian/rules debian/control spamd/main.c \
    etc/spamd-tarpit.service.in etc/spamd-tarpit-nft.service.in; do
	grep -qxF "spamd-tarpit-$VERSION/$f" "$TMP/dist.list" ||
	    missing="$missing $f"
done
if [ -z "$missing" ]; then ok "package_deb tarball holds the tree under spamd-tarpit-$VERSION/"
else nok "package_deb tarball contents" "missing$missing"; fi

# Build the .deb from the release tarball, as a distribution would.
tar -xzf "$TMP/clone/spamd-tarpit-$VERSION.tar.gz" -C "$TMP"
SRC=$TMP/spamd-tarpit-$VERSION
if (cd "$SRC" && DEB_BUILD_OPTIONS="parallel=2 nocheck" \
    timeout 600 dpkg-buildpackage -us -uc -b) >"$TMP/build.log" 2>&1; then
	ok "package_deb dpkg-buildpackage -us -uc -b"
else
	nok "package_deb dpkg-buildpackage" "$(grep -E 'error:|\*\*\*|dh_[a-z_]*: ' \
	    "$TMP/build.log" | head -3 | tr '\n' ' ')"
	exit 1
fi
ARCH=$(dpkg --print-architecture)
DEB=$TMP/spamd-tarpit_${VERSION}_$ARCH.deb
[ -f "$DEB" ] || { nok "package_deb .deb" "$DEB not made"; exit 1; }
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|; s| ->.*||' \
    >"$TMP/deb.list"

missing=""
for f in /usr/sbin/spamd-tarpit /usr/sbin/greyctl /usr/sbin/spamd-setup \
    /usr/sbin/greylogd /lib/systemd/system/spamd-tarpit.service \
    /lib/systemd/system/spamd-tarpit-nft.service /etc/spamd/spamd.nft \
    /usr/share/doc/spamd-tarpit/examples/spamd.nft \
    /usr/share/doc/spamd-tarpit/examples/spamd.conf; do
	grep -qxF "$f" "$TMP/deb.list" || missing="$missing $f"
done
if [ -z "$missing" ]; then ok "package_deb programs, unit and examples in the .deb"
else nok "package_deb contents" "missing$missing"; fi

missing=""
for m in man8/spamd.8 man8/greyctl.8 man8/spamd-setup.8 man8/greylogd.8 \
    man5/spamd.conf.5; do
	grep -qE "^/usr/share/man/$m(\.gz)?\$" "$TMP/deb.list" ||
	    missing="$missing $m"
done
if [ -z "$missing" ]; then ok "package_deb manuals under /usr/share/man"
else nok "package_deb manuals" "missing$missing"; fi

if grep -qxF /usr/sbin/spamd "$TMP/deb.list"; then
	nok "package_deb no /usr/sbin/spamd" "the .deb would clash with spamassassin"
else
	ok "package_deb no /usr/sbin/spamd (SpamAssassin's name)"
fi

# The unit as packaged: runs the packaged binary.
dpkg-deb -x "$DEB" "$TMP/root"
U=$TMP/root/lib/systemd/system/spamd-tarpit.service
NU=$TMP/root/lib/systemd/system/spamd-tarpit-nft.service
if grep -q '^ExecStart=/usr/sbin/spamd-tarpit ' "$U" 2>/dev/null &&
    ! grep -q '/usr/local\|@[A-Z]*@' "$U" "$NU"; then
	ok "package_deb unit ExecStart=/usr/sbin/spamd-tarpit"
else
	nok "package_deb unit ExecStart" "$(grep ExecStart "$U" 2>&1 | head -1)"
fi
# the ruleset unit loads the file the package installs, and is tied to
# nftables.service (restarted with it) and pulled in by spamd's unit
if grep -qx 'ExecStart=/usr/sbin/nft -f /etc/spamd/spamd.nft' "$NU" &&
    grep -qx 'PartOf=nftables.service' "$NU" &&
    grep -q '^Wants=.*spamd-tarpit-nft.service' "$U"; then
	ok "package_deb spamd-tarpit-nft.service loads /etc/spamd/spamd.nft, PartOf nftables, wanted by spamd-tarpit"
else
	nok "package_deb spamd-tarpit-nft.service" "$(grep -E 'ExecStart|PartOf|Wants' "$NU" "$U" | tr '\n' ' ')"
fi
if grep -qx /etc/spamd/spamd.nft "$TMP/ctl/conffiles" 2>/dev/null ||
    { dpkg-deb -e "$DEB" "$TMP/ctl0" && grep -qx /etc/spamd/spamd.nft "$TMP/ctl0/conffiles"; }; then
	ok "package_deb /etc/spamd/spamd.nft is a conffile"
else
	nok "package_deb conffile" "/etc/spamd/spamd.nft not in conffiles"
fi
for p in spamd-tarpit greyctl spamd-setup greylogd; do
	if [ -x "$TMP/root/usr/sbin/$p" ] && file_out=$(od -An -c -N4 \
	    "$TMP/root/usr/sbin/$p") && echo "$file_out" | grep -q 'E   L   F'; then
		:
	else
		nok "package_deb $p" "not an executable ELF file"
	fi
done

# Maintainer scripts: user and directories made; the unit not enabled.
dpkg-deb -e "$DEB" "$TMP/ctl"
PI=$TMP/ctl/postinst
if grep -q '_spamd' "$PI" && grep -q -- '-m 0750 /var/db/spamd' "$PI" &&
    grep -q '/var/empty' "$PI"; then
	ok "package_deb postinst creates _spamd, /var/empty, /var/db/spamd 0750"
else
	nok "package_deb postinst" "user or directories missing"
fi
# --no-enable: dh's snippet enables the unit only when the admin had
# installed and enabled it before (debian-installed, then was-enabled);
# the enabling snippet runs enable on every first install instead.
if ! grep -q 'spamd-tarpit.service' "$PI"; then
	nok "package_deb unit installed disabled" "postinst never mentions the unit"
elif ! grep -q 'deb-systemd-helper debian-installed' "$PI"; then
	nok "package_deb unit installed disabled" "postinst enables it on install"
elif grep -qE 'deb-systemd-invoke (start|restart)' "$PI"; then
	nok "package_deb unit installed disabled" "postinst starts it"
else
	ok "package_deb unit installed disabled and not started"
fi
if grep -q '^Depends:.*libevent' "$TMP/ctl/control"; then
	ok "package_deb Depends from shlibs (libevent)"
else
	nok "package_deb Depends" "$(grep ^Depends "$TMP/ctl/control")"
fi

# Installed as an operator does and run under the unit's restrictions
# (tests/system/lib/deploy_unit.py says how): here, so the .deb is built
# once. SPAMD_PKG_KEEP=DIR keeps a copy of the .deb (to rerun that part:
# python3 tests/system/lib/deploy_unit.py DEB build/tests/helpers/unit_sandbox).
[ -n "${SPAMD_PKG_KEEP:-}" ] && cp "$DEB" "$SPAMD_PKG_KEEP/"
python3 "$TOP/tests/system/lib/deploy_unit.py" "$DEB" \
    "${BUILD:-$TOP/build}/tests/helpers/unit_sandbox" || failed=1
exit $failed
