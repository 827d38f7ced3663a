#!/usr/bin/env bash
# Release artifacts under target/package/, from one release build per
# PostgreSQL major (cargo pgrx package, files laid out by pg_config's
# directories), packed by dpkg-deb and tar:
#   postgresql-<major>-tenancy_<version>_<arch>.deb  for Debian's and PGDG's
#       postgresql-<major>: the files under /usr/lib/postgresql/<major>/lib and
#       /usr/share/postgresql/<major>/extension, depends on postgresql-<major>
#   tenancy-<version>-pg<major>-linux-<arch>.tar.gz  for any PostgreSQL of that
#       major, directories named after pg_config's
# scripts/package.sh [deb|tarball|all] makes them for 15, 16, 17 and 18
# (lib.sh gets each), or for the one TENANCY_PG_CONFIG chooses (a major or a
# pg_config's path). Prints the paths of the files it made.
source "$(dirname "$0")/lib.sh"
VERSION=$(version)
PKG="$ROOT/target/package"
mkdir -p "$PKG"

# cargo pgrx package into $RAW, for the PostgreSQL choose_postgres found;
# LIB and EXT are the library and the extension directory in it.
build() {
    RAW="$PKG/build/pg$PG_MAJOR"
    rm -rf "$RAW"
    log "building tenancy $VERSION (release) for PostgreSQL $PG_MAJOR"
    (cd "$ROOT" && cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$RAW" \
        --no-default-features --features "pg$PG_MAJOR" >"$PKG/build-pg$PG_MAJOR.log" 2>&1) ||
        { cat "$PKG/build-pg$PG_MAJOR.log" >&2; log "the build failed"; exit 1; }
    LIB="$RAW$("$PG_CONFIG" --pkglibdir)/tenancy.so" EXT="$RAW$("$PG_CONFIG" --sharedir)/extension"
    strip --strip-unneeded "$LIB"
    find "$RAW" -type d -exec chmod 755 {} + && find "$RAW" -type f -exec chmod 644 {} +
}

deb() {
    local name arch stage doc deps libdir="/usr/lib/postgresql/$PG_MAJOR/lib"
    name=postgresql-$PG_MAJOR-tenancy arch=$(dpkg --print-architecture)
    stage="$PKG/deb/$name"
    rm -rf "$stage"
    install -D -m 644 "$LIB" "$stage$libdir/tenancy.so"
    install -d "$stage/usr/share/postgresql/$PG_MAJOR/extension"
    install -m 644 "$EXT"/tenancy* "$stage/usr/share/postgresql/$PG_MAJOR/extension/"
    doc="$stage/usr/share/doc/$name"
    install -D -m 644 "$ROOT/LICENSE" "$doc/copyright"
    gzip -9n <"$ROOT/README.md" >"$doc/README.md.gz" && chmod 644 "$doc/README.md.gz"
    # The libraries the .so needs, as Debian's own packages declare them.
    mkdir -p "$PKG/deb/debian"
    printf 'Source: tenancy\n\nPackage: %s\nArchitecture: any\n' "$name" >"$PKG/deb/debian/control"
    deps=$(cd "$PKG/deb" && dpkg-shlibdeps -O "$stage$libdir/tenancy.so" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
    mkdir -p "$stage/DEBIAN"
    cat >"$stage/DEBIAN/control" <<CONTROL
Package: $name
Version: $VERSION
Architecture: $arch
Maintainer: tenancy developers <dev@tenancy.invalid>
Depends: postgresql-$PG_MAJOR, $deps
Section: database
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Description: multi-tenant isolation inside PostgreSQL $PG_MAJOR
 tenancy keeps the tenant catalog, the tenant lifecycle, a tamper-resistant
 current tenant, generated row-level security and an audit trail next to the
 data: any driver, any language, any pooler gets isolation from SQL alone.
 .
 This package holds the extension for PostgreSQL $PG_MAJOR, with the scripts
 that update every earlier version: CREATE EXTENSION tenancy;
CONTROL
    (cd "$stage" && find usr -type f -exec md5sum {} + | sort -k2) >"$stage/DEBIAN/md5sums"
    dpkg-deb --root-owner-group -Zxz --build "$stage" "$PKG/${name}_${VERSION}_$arch.deb" >/dev/null
    echo "$PKG/${name}_${VERSION}_$arch.deb"
}

tarball() {
    local name stage glibc
    name=tenancy-$VERSION-pg$PG_MAJOR-linux-$(uname -m)
    stage="$PKG/tar/$name"
    rm -rf "$stage" && mkdir -p "$stage/pkglibdir" "$stage/sharedir/extension"
    cp "$LIB" "$stage/pkglibdir/"
    cp "$EXT"/tenancy* "$stage/sharedir/extension/"
    cp "$ROOT/LICENSE" "$ROOT/README.md" "$stage/"
    # The newest glibc symbol version the library uses is the oldest glibc it runs on.
    glibc=$(objdump -T "$stage/pkglibdir/tenancy.so" | grep -oE 'GLIBC_[0-9.]+' | sed 's/GLIBC_//' | sort -V | tail -1)
    cat >"$stage/INSTALL" <<NOTE
tenancy $VERSION for PostgreSQL $PG_MAJOR on Linux $(uname -m) (glibc $glibc or newer)

The directories are named after pg_config's: copy each into the directory
that the pg_config of your PostgreSQL $PG_MAJOR names (as root, or as the
owner of that installation):

    install -m 755 pkglibdir/tenancy.so "\$(pg_config --pkglibdir)/"
    install -m 644 sharedir/extension/* "\$(pg_config --sharedir)/extension/"

Then, in each database, as a superuser:

    CREATE EXTENSION tenancy;

An earlier version is updated with ALTER EXTENSION tenancy UPDATE (the
update scripts are included). README.md has the rest.

To remove it (after DROP EXTENSION tenancy in every database):

    rm "\$(pg_config --pkglibdir)/tenancy.so" "\$(pg_config --sharedir)"/extension/tenancy[.-]*
NOTE
    chmod 644 "$stage/INSTALL"
    tar -C "$PKG/tar" --owner=0 --group=0 --numeric-owner --sort=name -czf "$PKG/$name.tar.gz" "$name"
    echo "$PKG/$name.tar.gz"
}

case "${1:-all}" in
    deb | tarball | all) ;;
    *) echo "usage: scripts/package.sh [deb|tarball|all]" >&2; exit 2 ;;
esac
if [ -n "${TENANCY_PG_CONFIG:-}" ]; then majors=("$TENANCY_PG_CONFIG"); else majors=("${MAJORS[@]}"); fi
for major in "${majors[@]}"; do
    (
        TENANCY_PG_CONFIG=$major ensure_tools dpkg-dev binutils
        build
        [ "${1:-all}" = tarball ] || deb
        [ "${1:-all}" = deb ] || tarball
    )
done
