#!/usr/bin/env bash
# Builds the Deckhand runtime image without Docker and without any base image: buildah, FROM
# scratch, holding `deckhand` built with the dist profile (release with whole-program LTO; no
# sandbox: --no-default-features), the plugin libraries, the shared libraries `ldd` names for
# them (glibc, libgcc_s, the loader), the CA bundle and a passwd entry for uid 10001. No shell,
# no package manager in the image.
#
#   deploy/build-image.sh [IMAGE]          default IMAGE: localhost/deckhand:dev
#
# Environment: ARTIFACTS=DIR takes the binary and plugins from DIR as they are (no cargo run;
# the tests use target/debug); BUILDAH="buildah --root DIR
# --runroot DIR --storage-driver vfs" keeps the image store elsewhere (the tests do).
# Prints the image id last. Docker users: deploy/Dockerfile builds the same layout.
set -euo pipefail
cd "$(dirname "$0")/.."

image="${1:-localhost/deckhand:dev}"
BUILDAH="${BUILDAH:-buildah}"
release="${ARTIFACTS:-target/dist}"
plugins=(acr aks daskhub minio runner vk)

if [ -z "${ARTIFACTS:-}" ]; then
    args=(-p deckhand)
    for p in "${plugins[@]}"; do args+=(-p "deckhand-plugin-$p"); done
    cargo build --profile dist --no-default-features "${args[@]}" >&2
fi

rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT

install -D -m 0755 "$release/deckhand" "$rootfs/usr/local/bin/deckhand"
for p in "${plugins[@]}"; do
    install -D -m 0644 "$release/libdeckhand_plugin_$p.so" \
        "$rootfs/usr/local/lib/deckhand/plugins/libdeckhand_plugin_$p.so"
done
strip --strip-unneeded "$rootfs/usr/local/bin/deckhand" "$rootfs"/usr/local/lib/deckhand/plugins/*.so

# Every shared library the binary and the plugins link, at the path the loader looks for it.
for file in "$rootfs/usr/local/bin/deckhand" "$rootfs"/usr/local/lib/deckhand/plugins/*.so; do
    ldd "$file" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
done | sort -u | while read -r lib; do
    cp --parents -L "$lib" "$rootfs/"
done

install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'deckhand:x:10001:10001:deckhand:/var/lib/deckhand:/nonexistent\n' > "$rootfs/etc/passwd"
printf 'deckhand:x:10001:\n' > "$rootfs/etc/group"
# Mount points: the pod mounts the config (read-only), the state and /tmp (plugin copies).
mkdir -p "$rootfs/etc/deckhand" "$rootfs/var/lib/deckhand" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"

ctr="$($BUILDAH from scratch)"
cleanup() { $BUILDAH rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$rootfs"; }
trap cleanup EXIT
$BUILDAH copy "$ctr" "$rootfs" / >/dev/null
$BUILDAH config \
    --user 10001:10001 \
    --workingdir /var/lib/deckhand \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --port 9090 --port 9095 \
    --label org.opencontainers.image.title=deckhand \
    --label org.opencontainers.image.source=deploy/build-image.sh \
    --entrypoint '["/usr/local/bin/deckhand"]' \
    --cmd '["serve", "--config", "/etc/deckhand/deckhand.toml"]' \
    "$ctr"
$BUILDAH commit --quiet "$ctr" "$image"
