#!/usr/bin/env bash
# The release artifacts, installed as a user installs them, run by
# scripts/test.sh last: scripts/package.sh builds the .deb and the tarball
# for the PostgreSQL under test (one build); both must hold the same library
# and scripts, and the .deb its files where Debian's and PGDG's
# postgresql-<major> look for them. The one that fits the PostgreSQL under
# test is installed: the .deb on Debian's layout (dpkg -i), else the tarball
# (the commands of its INSTALL note), in place of the source build, which is
# removed first; the regression suite runs on a fresh cluster against that
# install; dpkg -r (the note's rm) must leave no file behind. The source
# build is put back at the end, whatever happened.
set -Eeuo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
OUT=${1:?usage: run.sh OUTPUT_DIR}
PORT=${TENANCY_PACKAGE_PORT:-25435}
LIBDIR=$("$PG_CONFIG" --pkglibdir)
EXTDIR=$("$PG_CONFIG" --sharedir)/extension
installed_files() { ls "$LIBDIR"/tenancy.so "$EXTDIR"/tenancy[.-]* 2>/dev/null; }
restore() {
    stop_cluster "$PORT"
    [ "$kind" != deb ] || ! dpkg -s "$package" >/dev/null 2>&1 || as_installer dpkg -r "$package" >/dev/null
    install_extension >/dev/null 2>&1 || log "putting the source build back failed: see target/install.log"
}

if [ "$LIBDIR" = "/usr/lib/postgresql/$PG_MAJOR/lib" ] && dpkg -S "$PG_CONFIG" >/dev/null 2>&1; then
    kind=deb package=postgresql-$PG_MAJOR-tenancy
else
    kind=tarball package=
fi
artifacts=$(TENANCY_PG_CONFIG=$PG_CONFIG "$ROOT/scripts/package.sh" all)
deb=$(grep '\.deb$' <<<"$artifacts" || true) tarball=$(grep '\.tar\.gz$' <<<"$artifacts" || true)
check ".deb built" test -s "$deb"
check "tarball built" test -s "$tarball"

# Both unpacked side by side: the same files, the .deb's where
# postgresql-<major> looks for them, and nothing else but its documentation.
unpacked="$OUT/package-contents"
rm -rf "$unpacked" && mkdir -p "$unpacked/deb" "$unpacked/tar"
{ dpkg-deb -x "$deb" "$unpacked/deb" && tar -xzf "$tarball" -C "$unpacked/tar"; } || true
same_files() {
    local tar_dir deb_ext="$unpacked/deb/usr/share/postgresql/$PG_MAJOR/extension"
    tar_dir=$(ls -d "$unpacked"/tar/tenancy-*/)
    cmp "$tar_dir/pkglibdir/tenancy.so" "$unpacked/deb/usr/lib/postgresql/$PG_MAJOR/lib/tenancy.so" &&
        diff -r "$tar_dir/sharedir/extension" "$deb_ext" &&
        [ "$(cd "$unpacked/deb" && find . -type f | grep -v "^./usr/share/doc/postgresql-$PG_MAJOR-tenancy/" | sort)" = \
            "$(cd "$unpacked/deb" && { echo "./usr/lib/postgresql/$PG_MAJOR/lib/tenancy.so"; find "./usr/share/postgresql/$PG_MAJOR/extension" -type f; } | sort)" ]
}
check "the .deb and the tarball hold the same library and scripts, the .deb in PostgreSQL $PG_MAJOR's directories" same_files
control() {
    [ "$(dpkg-deb --field "$deb" Package)" = "postgresql-$PG_MAJOR-tenancy" ] &&
        [[ "$(dpkg-deb --field "$deb" Depends)" == "postgresql-$PG_MAJOR, "* ]]
}
check "the .deb is postgresql-$PG_MAJOR-tenancy and depends on postgresql-$PG_MAJOR" control
if [ "$kind" = deb ]; then artifact=$deb; else artifact=$tarball; fi
trap restore EXIT

as_installer rm -f $(installed_files)
check "the source build removed" test -z "$(installed_files)"

install_tarball_note() ( # run the INSTALL note's commands ($1: install or rm) as written
    dir="$OUT/package"
    rm -rf "$dir" && mkdir -p "$dir" && tar -xzf "$artifact" -C "$dir"
    cd "$dir"/tenancy-* || exit 1
    grep -E "^    $1 " INSTALL | while read -r line; do eval "as_installer $line" || exit 1; done
)
case $kind in
    deb)
        check "dpkg -i $(basename "$artifact")" as_installer dpkg -i "$artifact" >"$OUT/package-dpkg.log" 2>&1
        check "dpkg --verify $package" as_installer dpkg --verify "$package" ;;
    tarball)
        check "installed by the INSTALL note" install_tarball_note install ;;
esac
check "every file of the package in place" test "$(installed_files | wc -l)" -ge 6

# The regression suite against the installed package, on its own fresh cluster
# (no backend of the test cluster has the source build's library loaded).
fresh_cluster "$PORT"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -f "$ROOT/tests/roles.sql"
# shellcheck disable=SC2046
regress "$PORT" "$OUT/package-regress" --dbname=tenancy_package $(tenancy_schedule) >/dev/null
check "regression suite against the $kind" grep -qE 'All [0-9]+ tests passed' "$OUT/package-regress.log"
stop_cluster "$PORT"

case $kind in
    deb) check "dpkg -r $package" as_installer dpkg -r "$package" >>"$OUT/package-dpkg.log" 2>&1 ;;
    tarball) check "removed by the INSTALL note" install_tarball_note rm ;;
esac
check "nothing left behind" test -z "$(installed_files)"

echo "$passed passed, $failed failed"
